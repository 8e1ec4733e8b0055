// The model types shared with the SDK (`ConceptID` and its shard function) live in the leaf target SutraModel;
// every module that imports Shard sees them as before.
@_exported import SutraModel
