/// This build's version: `tasker --version` prints it and a node logs it when it starts, so
/// that the nodes of a cluster can be told apart during a rolling upgrade.
public enum TaskerVersion {
    public static let current = "0.13.0"
}
