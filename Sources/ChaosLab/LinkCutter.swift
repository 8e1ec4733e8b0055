/// Something that can cut the links between nodes, one direction at a time: network namespaces with blackhole
/// routes (`NetworkLab`, needs root) or the fault-injecting TCP proxy between nodes on loopback (`LinkProxy`).
/// Both only touch node↔node traffic; clients always reach every node. The fault injector partitions through
/// whichever the cluster has.
public protocol LinkCutter: AnyObject, Sendable {
    /// Node ids, ascending.
    var nodes: [Int] { get }
    /// The directed links currently cut.
    var blockedLinks: Set<DirectedLink> { get }
    /// Cuts one direction (nothing happens if it is cut already).
    func block(_ link: DirectedLink) throws
    /// Restores one direction.
    func unblock(_ link: DirectedLink) throws
    /// Restores every direction; returns the problems met (empty when the network is whole again).
    @discardableResult func heal() -> [String]
    /// How links are cut, for reports (e.g. "network namespaces 10.1.2.0/24").
    var mechanism: String { get }
}

extension LinkCutter {
    /// Applies `partition` on top of whatever is already cut.
    public func apply(_ partition: Partition) throws {
        for link in partition.blockedLinks(among: nodes).sorted() { try block(link) }
    }

    /// Cuts both directions between two nodes.
    public func blockBoth(_ a: Int, _ b: Int) throws {
        try block(DirectedLink(from: a, to: b))
        try block(DirectedLink(from: b, to: a))
    }
}
