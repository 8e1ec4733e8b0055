/// Checks over a paired history other than the linearizability search: reads of never-written values, reads
/// that missed an acknowledged earlier write, acknowledged writes missing from the final reads. Pure functions;
/// see each one for what it guarantees.
public enum HistoryChecks {}
