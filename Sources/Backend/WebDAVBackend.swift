// A WebDAV mirror through libcurl: PUT only, basic auth, every step with a
// timeout. An answer fbk does not expect counts as a failure, never as a
// success.

import Foundation
import Format
import Platform

/// Uploads with HTTP PUT to nginx's WebDAV module (deploy/nginx).
public struct WebDAVMirror: Mirror {
    public let url: String
    let base: String
    let user: String?
    let password: String?
    let passwordFile: String?
    let options: MirrorOptions

    /// The body nginx sends with its 409 when the object exists (deploy/nginx):
    /// any other 409 (e.g. a missing parent collection) is a failure.
    static let existsMarker = "fbk-object-exists"

    public init(url: String, user: String?, passwordFile: String?, options: MirrorOptions) throws(StoreError) {
        self.url = url
        base = url.hasSuffix("/") ? url : url + "/"
        self.user = user
        self.options = options
        self.passwordFile = passwordFile
        password = try passwordFile.map { (f) throws(StoreError) in
            try readPasswordFile(f, for: "mirror \(url)", mustBePrivate: true)
        }
    }

    public func put(_ relativePath: String, from localPath: String, size: Int) throws(MirrorFailure) -> PutOutcome {
        var attempt = 0
        while true {
            do {
                return try putOnce(relativePath, from: localPath, size: size)
            } catch {
                // A mirror that stays silent (no byte for stall_timeout) is not asked again
                // in this run: each retry would cost the whole timeout once more.
                if error.permanent || error.silent || attempt >= options.retryDelays.count { throw error }
                Thread.sleep(forTimeInterval: options.retryDelays[attempt])
                attempt += 1
            }
        }
    }

    func putOnce(_ relativePath: String, from localPath: String, size: Int) throws(MirrorFailure) -> PutOutcome {
        let response: CurlTransfer.Response
        do {
            response = try CurlTransfer.perform(method: "PUT", url: base + relativePath, user: user, password: password,
                                                uploadFile: localPath, uploadSize: size, options: options)
        } catch {
            // An unsupported scheme, a malformed URL or a TLS handshake with a plain server: the URL is wrong.
            let wrongURL = [1, 3, 35].contains(error.curlCode)
            var failure = MirrorFailure(mirror: url, message: "PUT \(relativePath) failed: \(error.message)",
                                        permanent: error.curlCode < 0 || wrongURL, misconfigured: wrongURL)
            // CURLE_OPERATION_TIMEDOUT: connected, then nothing (or too little) for stall_timeout.
            failure.silent = error.curlCode == 28
            throw failure
        }
        let status = response.status
        let body = String(decoding: response.body, as: UTF8.self)
        switch status {
        case 200, 201, 204:
            return .stored
        case 409 where body.contains(Self.existsMarker):
            return .alreadyPresent
        case 401:
            throw MirrorFailure(mirror: url, message: "the mirror rejected the credentials (401) of user \(user ?? "(none)"): the password in \(passwordFile ?? "(no password_file)") is not the one in the mirror's htpasswd (after fbk enroll --rotate, install the bundle's new password there)", permanent: true, misconfigured: true)
        case 403:
            throw MirrorFailure(mirror: url, message: "the mirror refused the upload (403): the URL must be this client's own directory (…/\(user ?? "CLIENT")/), and the account must match it", permanent: true, misconfigured: true)
        case 413:
            throw MirrorFailure(mirror: url, message: "the mirror refused the object as too large (413): set client_max_body_size 0 in nginx", permanent: true, misconfigured: true)
        case 507:
            throw MirrorFailure(mirror: url, message: "the mirror is out of space (507)", permanent: true)
        case 500...599:
            throw MirrorFailure(mirror: url, message: "the mirror failed (HTTP \(status)) on PUT \(relativePath)", permanent: false)
        default:
            throw MirrorFailure(mirror: url, message: "the mirror answered HTTP \(status) to PUT \(relativePath), which fbk does not expect (is the URL this client's directory on an fbk mirror?); counted as a failure", permanent: true, misconfigured: true)
        }
    }
}
