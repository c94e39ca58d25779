/// A validated template and its place in the order of registration.
struct StoredTemplate: Sendable {
    let validated: ValidatedTemplate
    /// Larger for a later registration; the newest version of a name has the largest.
    let registration: Int
    /// What SubmitTask writes for this template's steps on every task.
    let columns: TemplateStepColumns

    init(validated: ValidatedTemplate, registration: Int) {
        self.validated = validated
        self.registration = registration
        self.columns = TemplateStepColumns(validated.template)
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
        if newest, stored.registration >= newestByName[template.name]?.registration ?? .min {
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
