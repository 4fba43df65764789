import Testing

@testable import HearthPostgres

/// The `storage` setting's PostgreSQL URLs.
@Suite("PostgreSQL locations")
struct PostgresLocationTests {
    @Test func urlsNameTheServerTheUserAndTheDatabase() throws {
        let location = try #require(PostgresLocation(url: "postgres://hearth:s%40cret@db.internal:6432/plant"))
        #expect(location.host == "db.internal" && location.port == 6432)
        #expect(location.user == "hearth" && location.password == "s@cret" && location.database == "plant")
        #expect(location.description == "postgres://hearth@db.internal:6432/plant", "no password in logs")
        let defaults = try #require(PostgresLocation(url: "postgresql://hearth@127.0.0.1/plant"))
        #expect(defaults.port == 5432 && defaults.password == nil)
    }

    @Test func otherTextIsNotALocation() {
        for text in ["file", "mysql://u@h/db", "postgres://h/db", "postgres://u@h", "postgres://u@h/", "postgres://u@/db", "postgres://u@h/a/b"] {
            #expect(PostgresLocation(url: text) == nil, "\(text)")
        }
    }
}
