import CUV
#if canImport(Glibc)
import Glibc
#endif

/// Asynchronous file operations on libuv's thread pool; completions run on the loop thread.
/// Each request owns its buffer and completion until its callback runs, exactly once.
public struct FileIO {
    public let loop: EventLoop

    public init(loop: EventLoop) { self.loop = loop }

    public typealias Completion = (Result<Int, UVError>) -> Void

    private func submit(_ what: String, _ completion: @escaping Completion, buffer: UnsafeMutableRawPointer? = nil,
                        _ start: (UnsafeMutablePointer<uv_fs_t>, uv_fs_cb) -> Int32) {
        loop.assertOnLoopThread(what)
        let req = UnsafeMutablePointer<uv_fs_t>.allocate(capacity: 1)
        req.pointee.data = RequestBox((what, completion, buffer)).retainedPointer()
        let status = start(req, { req in
            let box = RequestBox<(String, Completion, UnsafeMutableRawPointer?)>.take(req!.pointee.data)
            let result = req!.pointee.result
            uv_fs_req_cleanup(req)
            req!.deallocate()
            // Completion first: a read copies its bytes out of the buffer before it is freed.
            box.value.1(result < 0 ? .failure(UVError(Int32(result), box.value.0)) : .success(result))
            box.value.2?.deallocate()
        })
        if status < 0 {
            let box = RequestBox<(String, Completion, UnsafeMutableRawPointer?)>.take(req.pointee.data)
            req.deallocate()
            box.value.2?.deallocate()
            completion(.failure(UVError(status, what)))
        }
    }

    /// Opens `path` with POSIX `flags` and `mode`; the result is the file descriptor.
    public func open(_ path: String, flags: Int32, mode: Int32 = 0o644, _ completion: @escaping Completion) {
        submit("open \(path)", completion) { req, cb in uv_fs_open(loop.raw, req, path, flags, mode, cb) }
    }

    /// Writes `bytes` at `offset` (copied once; the caller's array may change afterwards). Result: bytes written.
    public func write(fd: Int32, _ bytes: [UInt8], at offset: Int64, _ completion: @escaping Completion) {
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.withUnsafeBytes { if let b = $0.baseAddress { storage.copyMemory(from: b, byteCount: $0.count) } }
        var buf = uv_buf_init(storage.assumingMemoryBound(to: CChar.self), UInt32(bytes.count))
        submit("write", completion, buffer: storage) { req, cb in uv_fs_write(loop.raw, req, fd, &buf, 1, offset, cb) }
    }

    /// Reads up to `count` bytes at `offset`.
    public func read(fd: Int32, count: Int, at offset: Int64, _ completion: @escaping (Result<[UInt8], UVError>) -> Void) {
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 16)
        var buf = uv_buf_init(storage.assumingMemoryBound(to: CChar.self), UInt32(count))
        submit("read", { result in
            completion(result.map { n in Array(UnsafeRawBufferPointer(start: storage, count: n)) })
        }, buffer: storage) { req, cb in uv_fs_read(loop.raw, req, fd, &buf, 1, offset, cb) }
    }

    public func fsync(fd: Int32, _ completion: @escaping Completion) {
        submit("fsync", completion) { req, cb in uv_fs_fsync(loop.raw, req, fd, cb) }
    }

    public func fdatasync(fd: Int32, _ completion: @escaping Completion) {
        submit("fdatasync", completion) { req, cb in uv_fs_fdatasync(loop.raw, req, fd, cb) }
    }

    public func close(fd: Int32, _ completion: @escaping Completion) {
        submit("close", completion) { req, cb in uv_fs_close(loop.raw, req, fd, cb) }
    }
}
