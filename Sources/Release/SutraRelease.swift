/// This build's release: the number `--version` prints on every binary and `sutra_build_info` reports.
///
/// Releases are listed in `CHANGELOG.md`, each with the commit it was cut from, and the compatibility table
/// there says which releases may run side by side during a rolling upgrade. A development build carries the
/// next release's number with `-dev`.
public enum SutraRelease {
    /// Semantic version of this build.
    public static let version = "0.2.0-dev"
}
