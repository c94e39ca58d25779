import Foundation

/// The parts of Tasker that take bytes from outside, each a target.
enum FuzzTarget: String, CaseIterable {
    /// gRPC's length-prefixed messages, split across DATA chunks at the input's say.
    case deframer
    /// An nghttp2 server session fed the input as the bytes of a connection.
    case http2
    /// Every Tasker request message (and a worker's messages) decoded and checked.
    case requests
    /// A JSON Schema and a document, compiled and checked.
    case schema
    /// A template, decoded from protobuf or JSON, and validated.
    case template
    /// A JSON Schema pattern compiled and matched.
    case pattern
    /// Text read as stored JSON.
    case storedJSON = "stored-json"

    static let selected: FuzzTarget = {
        guard let name = ProcessInfo.processInfo.environment["TASKER_FUZZ_TARGET"], let target = FuzzTarget(rawValue: name) else {
            fatalError("TASKER_FUZZ_TARGET must name a target: \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return target
    }()

    func run(_ input: UnsafeRawBufferPointer) {
        switch self {
        case .deframer: FuzzDeframer.run(input)
        case .http2: FuzzHTTP2.run(input)
        case .requests: FuzzRequests.run(input)
        case .schema: FuzzSchema.run(input)
        case .template: FuzzTemplate.run(input)
        case .pattern: FuzzPattern.run(input)
        case .storedJSON: FuzzStoredJSON.run(input)
        }
    }
}

/// Splits an input at its first 0xFF byte (or in the middle): two parts for targets of two.
func halves(_ input: UnsafeRawBufferPointer) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
    let cut = input.firstIndex(of: 0xFF) ?? input.count / 2
    return (UnsafeRawBufferPointer(rebasing: input[..<cut]), UnsafeRawBufferPointer(rebasing: input[min(cut + 1, input.count)...]))
}
