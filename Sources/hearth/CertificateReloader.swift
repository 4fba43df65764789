import Dispatch
import Foundation
import HearthServer
import Logging

/// Re-reads the TLS certificate and key on SIGHUP (after a renewal, e.g. by certbot's deploy
/// hook: `systemctl reload hearth`). Connections already open keep their handshake; new ones
/// get the new certificate. Files that cannot be used are logged and the old identity stays.
/// Without TLS, SIGHUP is logged and otherwise ignored (it never ends the server).
final class CertificateReloader {
    private let source: any DispatchSourceSignal

    init(identity: TLSIdentity?, logger: Logger) {
        // The default action of SIGHUP ends the process: take it over.
        signal(SIGHUP, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler {
            guard let identity else {
                logger.notice("SIGHUP: nothing to reload (no TLS certificate is configured)")
                return
            }
            do {
                let subject = try identity.reload()
                logger.notice("TLS certificate reloaded", metadata: ["certificate": "\(subject)"])
            } catch {
                logger.error("TLS certificate reload failed; still serving the previous certificate: \(error)")
            }
        }
        source.resume()
    }

    func cancel() {
        source.cancel()
    }
}
