import Foundation
import HTTPTypes
import Hummingbird

/// The dashboard at `/`: plain HTML, CSS and JavaScript shipped in the binary's resources and
/// held in memory, so serving them reads no file. It talks only to the JSON API.
public struct DashboardRoutes: HTTPRoutes {
    struct Asset: Sendable {
        let contentType: String
        let bytes: ByteBuffer
    }

    private let assets: [String: Asset]

    public init() {
        var assets: [String: Asset] = [:]
        let types = ["html": "text/html; charset=utf-8", "css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8"]
        if let folder = Bundle.module.url(forResource: "Assets", withExtension: nil),
           let files = try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil) {
            for file in files {
                guard let type = types[file.pathExtension], let data = try? Data(contentsOf: file) else { continue }
                assets[file.lastPathComponent] = Asset(contentType: type, bytes: ByteBuffer(bytes: data))
            }
        }
        self.assets = assets
    }

    /// The page's own files only: no inline script, nothing from elsewhere, never in a frame.
    static let policy = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

    public func add(to router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in
            serve("index.html")
        }
        router.get("/assets/{file}") { _, context in
            serve(context.parameters.get("file") ?? "")
        }
    }

    private func serve(_ name: String) -> Response {
        guard let asset = assets[name] else {
            return Response(status: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: "no such asset\n")))
        }
        return Response(
            status: .ok,
            headers: [
                .contentType: asset.contentType, .cacheControl: "no-cache", .contentSecurityPolicy: Self.policy,
                HTTPField.Name("X-Content-Type-Options")!: "nosniff", HTTPField.Name("Referrer-Policy")!: "no-referrer",
            ],
            body: .init(byteBuffer: asset.bytes))
    }
}
