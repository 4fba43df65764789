import HTTPTypes

extension HTTPFields {
    /// Sets `field`, replacing the values of its name if there are any, else appending it.
    /// (`contains` and `append`: the subscript's getter joins values and its setter validates
    /// and searches, which cost several percent of a small request.)
    mutating func set(_ field: HTTPField) {
        if contains(field.name) {
            self[field.name] = field.value
        } else {
            append(field)
        }
    }
}
