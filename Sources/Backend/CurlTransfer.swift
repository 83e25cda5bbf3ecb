// One HTTP request through libcurl, with the timeouts every network step
// of fbk has, for the WebDAV backend (PUT; GET and PROPFIND) and the S3
// backend (requests signed with AWS Signature V4 by libcurl itself).

internal import CCurl
import FoundationEssentials
import Glibc
import Platform

/// An HTTP request and what came back.
final class CurlTransfer {
    struct Response {
        var status: Int
        /// Up to `bodyLimit` bytes of the body (when not written to a file).
        var body: [UInt8]
        /// The server's clock, from its `Date` header (RFC 9110 5.6.7).
        var date: Date?
        /// The response's headers, names in lower case (at most 64 kept, each under 1 KiB).
        var headers: [String: String] = [:]
    }

    /// How a request proves who sends it.
    enum Credentials {
        /// HTTP Basic (WebDAV accounts).
        case basic(user: String, password: String)
        /// AWS Signature V4 (CURLOPT_AWS_SIGV4), for S3: `scope` is
        /// "aws:amz:REGION:s3"; the request must carry `x-amz-content-sha256`.
        case sigv4(scope: String, accessKey: String, secretKey: String)
    }

    struct Failure: Error {
        let message: String
        let curlCode: Int32
        /// The body was cut off: larger than `downloadLimit`.
        var exceededLimit = false
    }

    static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)); return () }()

    private var upload: UnsafeMutablePointer<FILE>?
    private var download: UnsafeMutablePointer<FILE>?
    private var body: [UInt8] = []
    private let bodyLimit: Int
    /// The most bytes written to `download` before the transfer is aborted.
    private var downloadLimit = Int.max
    private var downloaded = 0
    private var headers: [String: String] = [:]
    /// Upload bytes not yet handed to curl (a PUT of part of a file).
    private var uploadRemaining = 0
    private var limiter: UploadLimiter?

    private init(bodyLimit: Int) { self.bodyLimit = bodyLimit }

    /// Performs one request.
    /// - Parameters:
    ///   - uploadFile/uploadSize: a PUT body, streamed from a file.
    ///   - downloadFile: where to stream the response body (else kept in memory up to `bodyLimit`).
    ///   - downloadLimit: a body larger than this is not written: the transfer fails.
    ///   - uploadOffset: where in `uploadFile` the `uploadSize` bytes start (a part of a multipart upload).
    ///   - postBody: a POST's body, sent as is (S3's multipart requests).
    static func perform(method: String, url: String, user: String?, password: String?, headers: [String] = [],
                        uploadFile: String? = nil, uploadSize: Int = 0, downloadFile: String? = nil,
                        bodyLimit: Int = 4096, downloadLimit: Int = .max, options: MirrorOptions,
                        expectedSize: Int = 0) throws(Failure) -> Response {
        try perform(method: method, url: url, credentials: user.flatMap { u in password.map { .basic(user: u, password: $0) } },
                    headers: headers, uploadFile: uploadFile, uploadSize: uploadSize, downloadFile: downloadFile,
                    bodyLimit: bodyLimit, downloadLimit: downloadLimit, options: options, expectedSize: expectedSize)
    }

    static func perform(method: String, url: String, credentials: Credentials?, headers: [String] = [],
                        uploadFile: String? = nil, uploadOffset: Int = 0, uploadSize: Int = 0, postBody: String? = nil,
                        downloadFile: String? = nil, bodyLimit: Int = 4096, downloadLimit: Int = .max,
                        options: MirrorOptions, expectedSize: Int = 0) throws(Failure) -> Response {
        _ = globalInit
        let t = CurlTransfer(bodyLimit: bodyLimit)
        t.downloadLimit = downloadLimit
        t.limiter = options.uploadLimiter
        if let uploadFile {
            guard let f = fopen(uploadFile, "rb") else { throw Failure(message: "cannot read \(uploadFile)", curlCode: -1) }
            t.upload = f
            t.uploadRemaining = uploadSize
            if uploadOffset > 0, fseeko(f, off_t(uploadOffset), SEEK_SET) != 0 {
                fclose(f)
                throw Failure(message: "cannot seek in \(uploadFile)", curlCode: -1)
            }
        }
        if let downloadFile {
            // A new file only: never one that exists, never through a link.
            let fd = open(downloadFile, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw Failure(message: "cannot create \(downloadFile): \(String(cString: strerror(errno)))", curlCode: -1) }
            guard let f = fdopen(fd, "wb") else {
                close(fd)
                throw Failure(message: "cannot open \(downloadFile) for writing", curlCode: -1)
            }
            t.download = f
        }
        defer {
            if let f = t.upload { fclose(f) }
            if let f = t.download { fclose(f) }
        }
        guard let easy = curl_easy_init() else { throw Failure(message: "curl_easy_init failed", curlCode: -1) }
        defer { curl_easy_cleanup(easy) }
        let me = Unmanaged.passUnretained(t).toOpaque()
        CCurl_easy_setopt_str(easy, CURLOPT_URL, url)
        if uploadFile != nil {
            CCurl_easy_setopt_long(easy, CURLOPT_UPLOAD, 1)
            CCurl_easy_setopt_off(easy, CURLOPT_INFILESIZE_LARGE, uploadSize)
            CCurl_easy_setopt_read_cb(easy) { buffer, size, count, user in
                let t = Unmanaged<CurlTransfer>.fromOpaque(user!).takeUnretainedValue()
                let n = fread(buffer, 1, min(size * count, t.uploadRemaining), t.upload!)
                t.uploadRemaining -= n
                t.limiter?.take(n)
                return n
            }
            CCurl_easy_setopt_ptr(easy, CURLOPT_READDATA, me)
        } else if let postBody {
            CCurl_easy_setopt_long(easy, CURLOPT_POST, 1)
            CCurl_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE, postBody.utf8.count)
            CCurl_easy_setopt_str(easy, CURLOPT_COPYPOSTFIELDS, postBody)
        } else if method == "HEAD" {
            CCurl_easy_setopt_long(easy, CURLOPT_NOBODY, 1)
        } else if method != "GET" {
            CCurl_easy_setopt_str(easy, CURLOPT_CUSTOMREQUEST, method)
        }
        CCurl_easy_setopt_header_cb(easy) { data, size, count, user in
            let t = Unmanaged<CurlTransfer>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            guard let data, n > 3, n < 1024, t.headers.count < 64 else { return n }
            let line = String(decoding: UnsafeRawBufferPointer(start: data, count: n), as: UTF8.self)
            if let colon = line.firstIndex(of: ":") {
                t.headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingWhitespace()
            }
            return n
        }
        CCurl_easy_setopt_ptr(easy, CURLOPT_HEADERDATA, me)
        CCurl_easy_setopt_write_cb(easy) { data, size, count, user in
            let t = Unmanaged<CurlTransfer>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            guard let data else { return n }
            if let f = t.download {
                // A server that sends more than any such object may be is cut off (curl fails the transfer).
                t.downloaded += n
                guard t.downloaded <= t.downloadLimit else { return 0 }
                return fwrite(data, 1, n, f)
            }
            if t.body.count < t.bodyLimit {
                t.body += UnsafeRawBufferPointer(start: data, count: min(n, t.bodyLimit - t.body.count))
            }
            return n
        }
        CCurl_easy_setopt_ptr(easy, CURLOPT_WRITEDATA, me)
        var list: UnsafeMutablePointer<curl_slist>? = nil
        for h in headers { list = curl_slist_append(list, h) }
        defer { curl_slist_free_all(list) }
        if list != nil { CCurl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list) }
        switch credentials {
        case .basic(let user, let password):
            CCurl_easy_setopt_long(easy, CURLOPT_HTTPAUTH, CCurl_AUTH_BASIC())
            CCurl_easy_setopt_str(easy, CURLOPT_USERNAME, user)
            CCurl_easy_setopt_str(easy, CURLOPT_PASSWORD, password)
        case .sigv4(let scope, let accessKey, let secretKey):
            CCurl_easy_setopt_str(easy, CURLOPT_AWS_SIGV4, scope)
            CCurl_easy_setopt_str(easy, CURLOPT_USERNAME, accessKey)
            CCurl_easy_setopt_str(easy, CURLOPT_PASSWORD, secretKey)
        case nil:
            break
        }
        CCurl_easy_setopt_str(easy, CURLOPT_USERAGENT, "fbk/\(fbkVersion)")
        CCurl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        CCurl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT, options.connectTimeout)
        CCurl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, options.lowSpeedLimit)
        CCurl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, options.lowSpeedTime)
        // An overall cap: the size at 64 KiB/s, plus a minute.
        // A HEAD (the server's clock) is small: a few seconds at most.
        // Under an upload limit slower than that, the size at the limit's rate.
        let rate = min(65_536, options.uploadLimiter?.bytesPerSecond ?? 65_536)
        CCurl_easy_setopt_long(easy, CURLOPT_TIMEOUT, method == "HEAD" ? min(options.connectTimeout + 3, 10) : 60 + max(uploadSize, expectedSize) / rate)
        CCurl_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0)
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        // The error buffer must stay put for the whole transfer: set and use it in one scope.
        let rc = errorBuffer.withUnsafeMutableBufferPointer { buffer -> CURLcode in
            CCurl_easy_setopt_ptr(easy, CURLOPT_ERRORBUFFER, buffer.baseAddress)
            return curl_easy_perform(easy)
        }
        guard rc == CURLE_OK else {
            let text = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let detail = text.isEmpty ? String(cString: curl_easy_strerror(rc)) : text
            throw Failure(message: "\(detail) (curl error \(rc.rawValue))", curlCode: Int32(rc.rawValue),
                          exceededLimit: t.downloaded > t.downloadLimit)
        }
        var status = 0
        CCurl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        return Response(status: status, body: t.body, date: t.headers["date"].flatMap(HTTPDate.parse), headers: t.headers)
    }
}

/// HTTP dates in their one current form (RFC 9110 5.6.7, IMF-fixdate):
/// `Sun, 06 Nov 1994 08:49:37 GMT`, as a `Date` or `Last-Modified` header
/// and a PROPFIND's `getlastmodified` give them. Anything else is no date.
enum HTTPDate {
    static func parse(_ text: String) -> Date? {
        let f = text.split(separator: " ")
        guard f.count == 6, f[5] == "GMT", let day = Int(f[1]), let year = Int(f[3]), (1970...9999).contains(year), (1...31).contains(day),
              let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].firstIndex(of: String(f[2]))
        else { return nil }
        let t = f[4].split(separator: ":").compactMap { Int($0) }
        guard t.count == 3, (0...23).contains(t[0]), (0...59).contains(t[1]), (0...60).contains(t[2]) else { return nil }
        var tm = Glibc.tm()
        tm.tm_year = Int32(year - 1900); tm.tm_mon = Int32(month); tm.tm_mday = Int32(day)
        tm.tm_hour = Int32(t[0]); tm.tm_min = Int32(t[1]); tm.tm_sec = Int32(t[2])
        return Date(timeIntervalSince1970: TimeInterval(timegm(&tm)))
    }
}
