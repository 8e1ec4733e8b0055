// The node process exposes its core types (NodeConfig, ClientOp, …) to the executable and the tests.
@_exported import NodeCore
