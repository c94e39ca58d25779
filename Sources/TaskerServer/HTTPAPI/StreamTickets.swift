import Foundation
import NIOConcurrencyHelpers
import TaskerAuth

/// Short-lived, single-use tickets for EventSource, which cannot send an `Authorization`
/// header: a caller trades its bearer header for a ticket (`POST /api/v1/tickets`) and opens
/// the stream with `?ticket=`. The URL, and so any log of it, holds only a ticket that is spent
/// or dead within `lifetime`; the token itself is still checked when the stream opens.
/// Tickets live in this node's memory: the stream must be opened on the node that issued it.
final class StreamTickets: Sendable {
    static let prefix = "tkt_"
    let lifetime: Double
    private let issued = NIOLockedValueBox<[String: (authorization: String?, expires: Double)]>([:])

    init(lifetime: Double = 30) {
        self.lifetime = lifetime
    }

    func issue(authorization: String?) -> String {
        let ticket = Self.prefix + APIToken.generate().text.dropFirst(APIToken.prefix.count)
        let now = Date().timeIntervalSince1970
        issued.withLockedValue { tickets in
            tickets = tickets.filter { $0.value.expires > now }
            tickets[ticket] = (authorization, now + lifetime)
        }
        return ticket
    }

    /// The authorization a ticket stands for, once; nil when it is unknown, spent or expired.
    func redeem(_ ticket: String) -> String?? {
        let now = Date().timeIntervalSince1970
        guard let entry = issued.withLockedValue({ $0.removeValue(forKey: ticket) }), entry.expires > now else { return nil }
        return .some(entry.authorization)
    }
}
