import Foundation

/// Embedding `i` of the vector tests' data set: points on a circle (4 dimensions), no two at the same distance
/// from the queries the tests use.
func circleEmbedding(_ i: Int) -> [Float] {
    let a = Double(i) * 0.05
    return [Float(cos(a)), Float(sin(a)), Float(i % 3) * 0.1, 0.5]
}

/// Cosine distance, as the nodes compute it: brute force's answer to compare a search with.
func cosineDistance(_ a: [Float], _ b: [Float]) -> Float {
    var dot: Float = 0, na: Float = 0, nb: Float = 0
    for j in 0..<a.count { dot += a[j] * b[j]; na += a[j] * a[j]; nb += b[j] * b[j] }
    return 1 - dot / (na.squareRoot() * nb.squareRoot())
}
