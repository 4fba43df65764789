#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An I/O failure with the file and the operation, for messages an operator can act on.
public struct StorageIOError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let path: String
    public let code: Int32

    public var description: String {
        "\(operation) \(path): \(String(cString: strerror(code))) (errno \(code))"
    }

    /// True for a full disk or quota.
    public var isOutOfSpace: Bool { code == ENOSPC || code == EDQUOT }
}

/// Thin, checked wrappers over the system calls storage needs.
enum FileIO {
    static func fail(_ operation: String, _ path: String) -> StorageIOError {
        StorageIOError(operation: operation, path: path, code: errno)
    }

    /// Opens (creating if needed) a file for appending; returns the descriptor.
    static func openForAppend(_ path: String) throws -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw fail("open", path) }
        return fd
    }

    /// Writes every byte, retrying short writes and interruptions.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw fail("write", path)
            }
            offset += written
        }
    }

    static func syncData(_ fd: Int32, path: String) throws {
        #if canImport(Glibc)
        guard fdatasync(fd) == 0 else { throw fail("fdatasync", path) }
        #else
        guard fsync(fd) == 0 else { throw fail("fsync", path) }
        #endif
    }

    static func syncFile(_ fd: Int32, path: String) throws {
        guard fsync(fd) == 0 else { throw fail("fsync", path) }
    }

    /// fsync on a directory, so that a created, renamed or removed entry is durable.
    static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw fail("open directory", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw fail("fsync directory", path) }
    }

    static func truncate(_ fd: Int32, to length: Int, path: String) throws {
        guard ftruncate(fd, off_t(length)) == 0 else { throw fail("ftruncate", path) }
    }

    static func truncate(path: String, to length: Int) throws {
        guard Glibc.truncate(path, off_t(length)) == 0 else { throw fail("truncate", path) }
    }

    /// The whole file.
    static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw fail("open", path) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw fail("stat", path) }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        var offset = 0
        while offset < bytes.count {
            let got = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + offset, $0.count - offset) }
            if got < 0 {
                if errno == EINTR { continue }
                throw fail("read", path)
            }
            if got == 0 { break }
            offset += got
        }
        if offset < bytes.count { bytes.removeLast(bytes.count - offset) }
        return bytes
    }

    /// Writes a file so that it is either wholly old or wholly new: a temporary file (created
    /// 0600 from its first instant, never through a symbolic link), fsync, rename over the
    /// target, fsync of the directory.
    static func writeAtomically(_ bytes: [UInt8], to path: String, directory: String) throws {
        let temporary = path + StorageFormat.temporarySuffix
        unlink(temporary)  // a leftover of an interrupted write
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw fail("open", temporary) }
        do {
            try bytes.withUnsafeBytes { try writeAll(fd, $0, path: temporary) }
            try syncFile(fd, path: temporary)
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let error = fail("rename", temporary)
            unlink(temporary)
            throw error
        }
        try syncDirectory(directory)
    }

    /// The directory holding `path` (`.` for a bare name).
    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }

    static func closeDescriptor(_ fd: Int32) {
        _ = close(fd)
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    static func remove(_ path: String) throws {
        guard unlink(path) == 0 || errno == ENOENT else { throw fail("unlink", path) }
    }

    static func makeDirectory(_ path: String) throws {
        guard mkdir(path, 0o700) == 0 || errno == EEXIST else { throw fail("mkdir", path) }
    }

    /// Names of the entries in a directory.
    static func list(_ path: String) throws -> [String] {
        guard let directory = opendir(path) else { throw fail("opendir", path) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func size(_ path: String) throws -> Int {
        var status = stat()
        guard stat(path, &status) == 0 else { throw fail("stat", path) }
        return Int(status.st_size)
    }
}

/// Files written whole or not at all, readable by their owner only (the admin token).
public enum AtomicFile {
    /// Writes `bytes` to `path` through a temporary file, fsync and rename, then syncs the
    /// directory, so that the file is either wholly old or wholly new, even after a crash.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try FileIO.writeAtomically(bytes, to: path, directory: FileIO.parentDirectory(of: path))
    }
}

extension StorageIOError {
    /// True if `error`, as storage reports a failed write (directly, or as the log's failure
    /// of a batch), comes from a full disk or quota.
    public static func isOutOfSpace(_ error: any Error) -> Bool {
        switch error {
        case let io as StorageIOError: io.isOutOfSpace
        case let failure as FileWriteLog.Failure: isOutOfSpace(failure.underlying)
        default: false
        }
    }
}
