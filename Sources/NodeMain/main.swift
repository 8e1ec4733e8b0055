// sutra-node: one Sutra node process. See `sutra-node --help` and docs/OPERATIONS.md.
import Node

NodeCommand.main()
