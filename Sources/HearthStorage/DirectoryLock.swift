#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Another process (a server, or a tool) is using the data directory.
public struct DataDirectoryInUse: Error, CustomStringConvertible, Sendable {
    public let directory: String
    public var description: String {
        "\(directory) is in use by another Hearth process (it holds \(directory)/LOCK). "
            + "Stop it first: two processes writing one data directory would corrupt it."
    }
}

/// An exclusive `flock` on `<data-dir>/LOCK`, held while a process may write the directory.
/// The kernel releases it if the process dies, so a crash never leaves it stale.
final class DirectoryLock: @unchecked Sendable {
    let descriptor: Int32

    init(directory: String) throws {
        try FileIO.makeDirectory(directory)
        let path = directory + "/" + StorageFormat.lockFileName
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FileIO.fail("open", path) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            _ = close(fd)
            if code == EWOULDBLOCK { throw DataDirectoryInUse(directory: directory) }
            throw StorageIOError(operation: "flock", path: path, code: code)
        }
        descriptor = fd
    }

    deinit {
        _ = flock(descriptor, LOCK_UN)
        _ = close(descriptor)
    }
}
