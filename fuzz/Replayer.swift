// Fuzz targets for libFuzzer. Built by scripts/fuzz.sh with `-sanitize=fuzzer,address` and
// FUZZING defined: libFuzzer then owns `main` and calls LLVMFuzzerTestOneInput, and the target
// is chosen by TASKER_FUZZ_TARGET. In an ordinary build this is a replayer instead:
// `tasker-fuzz TARGET FILE_OR_FOLDER…` runs each input through the target once, so the test
// suite runs the committed corpus on every build.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    FuzzTarget.selected.run(UnsafeRawBufferPointer(start: data, count: count))
    return 0
}

#if FUZZING
/// SwiftPM links an executable's entry point as `<module>_main`; in a fuzzing build it hands
/// the process to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("tasker_fuzz_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runDriver(&count, &arguments) { data, size in fuzzOneInput(data, size) }
}
#else
@main
struct Replayer {
    static func main() throws {
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
            let targets = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
            FileHandle.standardError.write(Data("usage: tasker-fuzz TARGET FILE_OR_FOLDER…   (targets: \(targets))\n".utf8))
            exit(64)
        }
        var replayed = 0
        for path in arguments.dropFirst() {
            var isFolder: ObjCBool = false
            let files = FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { path + "/" + $0 } : [path]
            for file in files {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
                bytes.withUnsafeBytes { target.run($0) }
                replayed += 1
            }
        }
        print("\(target.rawValue): \(replayed) inputs replayed")
    }
}
#endif
