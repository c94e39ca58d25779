import Hummingbird

/// A part of the HTTP port: the probes and metrics now, the JSON API and the dashboard's
/// assets later. Each adds its routes to the one router the port serves.
public protocol HTTPRoutes: Sendable {
    func add(to router: Router<BasicRequestContext>)
}
