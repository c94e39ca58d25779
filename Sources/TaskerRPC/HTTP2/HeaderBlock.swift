import CNGHTTP2

/// An ordered list of HTTP/2 header fields, stored as one contiguous byte array so that an
/// `nghttp2_nv` array can point into it without a copy per field.
struct HeaderBlock {
    private var bytes: [UInt8] = []
    private var spans: [(name: Range<Int>, value: Range<Int>)] = []

    init() {
        bytes.reserveCapacity(256)
    }

    var count: Int { spans.count }

    mutating func add(_ name: String, _ value: String) {
        let nameStart = bytes.count
        bytes.append(contentsOf: name.utf8)
        let valueStart = bytes.count
        bytes.append(contentsOf: value.utf8)
        spans.append((nameStart..<valueStart, valueStart..<bytes.count))
    }

    mutating func add(_ metadata: Metadata) {
        for entry in metadata {
            add(entry.key, entry.value.headerValue)
        }
    }

    /// Calls `body` with an `nghttp2_nv` array describing the fields; valid only inside `body`.
    func withNameValuePairs<R>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: max(spans.count, 1)) { nva in
            bytes.withUnsafeBufferPointer { raw in
                let base = UnsafeMutablePointer(mutating: raw.baseAddress ?? UnsafePointer(bitPattern: 1)!)
                for (index, span) in spans.enumerated() {
                    nva[index] = nghttp2_nv(
                        name: base + span.name.lowerBound,
                        value: base + span.value.lowerBound,
                        namelen: span.name.count,
                        valuelen: span.value.count,
                        flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
                }
                return body(UnsafePointer(nva.baseAddress!), spans.count)
            }
        }
    }
}
