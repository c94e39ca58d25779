/// A validated template and its place among the versions of its name.
struct StoredTemplate: Sendable {
    let validated: ValidatedTemplate
    /// Larger for a later registration.
    let registration: Int
    /// Its version's place in the order of versions (0008_version_order.sql), as hex: the
    /// newest version of a name has the largest, then the largest registration.
    let order: String
    /// What SubmitTask writes for this template's steps on every task.
    let columns: TemplateStepColumns

    init(validated: ValidatedTemplate, registration: Int, order: String) {
        self.validated = validated
        self.registration = registration
        self.order = order
        self.columns = TemplateStepColumns(validated.template)
    }

    /// Whether this version comes after `other` in the order of versions.
    func isAbove(_ other: StoredTemplate) -> Bool {
        (order, registration) > (other.order, other.registration)
    }
}

/// The templates a node has read. A (name, version) never changes once registered, so it is
/// kept for good; which version is the newest of a name can change on any node, so that
/// belief is checked where it is used and forgotten when it proves stale.
struct TemplateCache {
    private var byVersion: [String: StoredTemplate] = [:]
    private var newestByName: [String: StoredTemplate] = [:]

    func template(name: String, version: String) -> StoredTemplate? {
        byVersion[Self.key(name, version)]
    }

    func newest(of name: String) -> StoredTemplate? {
        newestByName[name]
    }

    /// Keeps a template; `newest` when it was just read or registered as the newest of its name.
    mutating func keep(_ stored: StoredTemplate, newest: Bool) {
        let template = stored.validated.template
        byVersion[Self.key(template.name, template.version)] = stored
        if newest, newestByName[template.name].map({ !$0.isAbove(stored) }) ?? true {
            newestByName[template.name] = stored
        }
    }

    mutating func forgetNewest(of name: String) {
        newestByName[name] = nil
    }

    private static func key(_ name: String, _ version: String) -> String {
        "\(name)\u{0}\(version)"
    }
}
