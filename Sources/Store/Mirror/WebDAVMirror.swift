// A WebDAV mirror through libcurl: PUT only, basic auth, every step with a
// timeout. An answer fbk does not expect counts as a failure, never as a
// success.

internal import CCurl
import Foundation

/// Uploads with HTTP PUT to nginx's WebDAV module (deploy/nginx).
public struct WebDAVMirror: Mirror {
    public let url: String
    let base: String
    let user: String?
    let password: String?
    let options: MirrorOptions

    /// The body nginx sends with its 409 when the object exists (deploy/nginx):
    /// any other 409 (e.g. a missing parent collection) is a failure.
    static let existsMarker = "fbk-object-exists"

    nonisolated(unsafe) static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) ; return () }()

    public init(url: String, user: String?, passwordFile: String?, options: MirrorOptions) throws(StoreError) {
        self.url = url
        base = url.hasSuffix("/") ? url : url + "/"
        self.user = user
        self.options = options
        if let passwordFile {
            guard let data = FileManager.default.contents(atPath: passwordFile) else {
                throw StoreError(.config, "cannot read the password file \(passwordFile) for mirror \(url)")
            }
            var st = stat()
            if stat(passwordFile, &st) == 0, st.st_mode & 0o077 != 0 {
                throw StoreError(.config, "the password file \(passwordFile) is readable by others; chmod 600 it")
            }
            password = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
        } else {
            password = nil
        }
        _ = Self.globalInit
    }

    public func put(_ relativePath: String, from localPath: String, size: Int) throws(MirrorFailure) -> PutOutcome {
        var attempt = 0
        while true {
            do {
                return try putOnce(relativePath, from: localPath, size: size)
            } catch {
                if error.permanent || attempt >= options.retryDelays.count { throw error }
                Thread.sleep(forTimeInterval: options.retryDelays[attempt])
                attempt += 1
            }
        }
    }

    /// Per-transfer state the C callbacks reach through their user pointer.
    final class Transfer {
        let file: UnsafeMutablePointer<FILE>
        var response: [UInt8] = []
        init(file: UnsafeMutablePointer<FILE>) { self.file = file }
    }

    func putOnce(_ relativePath: String, from localPath: String, size: Int) throws(MirrorFailure) -> PutOutcome {
        guard let file = fopen(localPath, "rb") else {
            throw MirrorFailure(mirror: url, message: "cannot read \(localPath)", permanent: true)
        }
        defer { fclose(file) }
        guard let easy = curl_easy_init() else {
            throw MirrorFailure(mirror: url, message: "curl_easy_init failed", permanent: false)
        }
        defer { curl_easy_cleanup(easy) }
        let transfer = Transfer(file: file)
        let me = Unmanaged.passUnretained(transfer).toOpaque()
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let target = base + relativePath
        CCurl_easy_setopt_str(easy, CURLOPT_URL, target)
        CCurl_easy_setopt_long(easy, CURLOPT_UPLOAD, 1)
        CCurl_easy_setopt_off(easy, CURLOPT_INFILESIZE_LARGE, size)
        CCurl_easy_setopt_read_cb(easy) { buffer, size, count, user in
            let t = Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue()
            return fread(buffer, size, count, t.file)
        }
        CCurl_easy_setopt_ptr(easy, CURLOPT_READDATA, me)
        CCurl_easy_setopt_write_cb(easy) { data, size, count, user in
            let t = Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            if t.response.count < 4096, let data {
                t.response += UnsafeRawBufferPointer(start: data, count: min(n, 4096 - t.response.count))
            }
            return n
        }
        CCurl_easy_setopt_ptr(easy, CURLOPT_WRITEDATA, me)
        if let user, let password {
            CCurl_easy_setopt_long(easy, CURLOPT_HTTPAUTH, CCurl_AUTH_BASIC())
            CCurl_easy_setopt_str(easy, CURLOPT_USERNAME, user)
            CCurl_easy_setopt_str(easy, CURLOPT_PASSWORD, password)
        }
        CCurl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        CCurl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT, options.connectTimeout)
        CCurl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, options.lowSpeedLimit)
        CCurl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, options.lowSpeedTime)
        // An overall cap: the size at 64 KiB/s, plus a minute.
        CCurl_easy_setopt_long(easy, CURLOPT_TIMEOUT, 60 + size / 65_536)
        CCurl_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0)
        // The error buffer must stay put for the whole transfer: set and use it in one scope.
        let rc = errorBuffer.withUnsafeMutableBufferPointer { buffer -> CURLcode in
            CCurl_easy_setopt_ptr(easy, CURLOPT_ERRORBUFFER, buffer.baseAddress)
            return curl_easy_perform(easy)
        }
        var status = 0
        CCurl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        guard rc == CURLE_OK else {
            let text = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let detail = text.isEmpty ? String(cString: curl_easy_strerror(rc)) : text
            throw MirrorFailure(mirror: url, message: "PUT \(relativePath) failed: \(detail) (curl error \(rc.rawValue))",
                                permanent: false)
        }
        let body = String(decoding: transfer.response, as: UTF8.self)
        switch status {
        case 200, 201, 204:
            return .stored
        case 409 where body.contains(Self.existsMarker):
            return .alreadyPresent
        case 401:
            throw MirrorFailure(mirror: url, message: "the mirror rejected the credentials (401): check the user and password file", permanent: true)
        case 403:
            throw MirrorFailure(mirror: url, message: "the mirror refused the upload (403): the URL must be this client's own directory, and the account must match it", permanent: true)
        case 413:
            throw MirrorFailure(mirror: url, message: "the mirror refused the object as too large (413): set client_max_body_size 0 in nginx", permanent: true)
        case 507:
            throw MirrorFailure(mirror: url, message: "the mirror is out of space (507)", permanent: true)
        case 500...599:
            throw MirrorFailure(mirror: url, message: "the mirror failed (HTTP \(status)) on PUT \(relativePath)", permanent: false)
        default:
            throw MirrorFailure(mirror: url, message: "the mirror answered HTTP \(status) to PUT \(relativePath), which fbk does not expect; counted as a failure", permanent: true)
        }
    }
}
