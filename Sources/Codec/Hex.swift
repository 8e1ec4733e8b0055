/// Lower-case hexadecimal text of bytes (digests, token hashes): two digits per byte, most significant first.
public func lowerHex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
    return String(decoding: out, as: UTF8.self)
}

/// A 64-bit value as 16 lower-case hexadecimal digits, zero-padded (file names, backup ids): sorts as the value.
public func fixedHex(_ v: UInt64) -> String {
    lowerHex(withUnsafeBytes(of: v.bigEndian) { Array($0) })
}
