import CFuzzer
#if canImport(Glibc)
import Glibc
#endif

/// The shared `main` of every fuzz target: `<target> --write-seeds DIR` writes the target's seed inputs (valid
/// encodings made by the real encoders, so the fuzzer starts past the magic numbers and checksums); anything
/// else is passed to libFuzzer's driver (`-max_total_time=20 CORPUS`, `-help=1`, a crash file to replay, …).
/// The callback must not capture: it is a C function pointer.
public func runFuzzer(seeds: () -> [[UInt8]], _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Never {
    let args = CommandLine.arguments
    if args.count == 3 && args[1] == "--write-seeds" {
        mkdir(args[2], 0o755)
        for (i, seed) in seeds().enumerated() {
            let path = args[2] + "/seed-\(i)"
            guard let f = fopen(path, "wb") else { perror(path); exit(1) }
            _ = seed.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
            fclose(f)
        }
        exit(0)
    }
    registered = callback
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
}

/// The fuzzer's bytes as an array (empty for a null pointer).
public func fuzzBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// The target's callback, for libFuzzer's own references to `LLVMFuzzerTestOneInput` (its driver object names it).
nonisolated(unsafe) var registered: (@convention(c) (UnsafePointer<UInt8>?, Int) -> Int32)?

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    registered?(data, size) ?? 0
}
