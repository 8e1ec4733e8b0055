/// Column and statistics helpers shared by the benchmarks.
enum BenchFormat {
    /// `v` left-aligned in a column of `width` characters.
    static func pad(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return s + String(repeating: " ", count: max(0, width - s.count))
    }

    static func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
}
