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
        #expect(defaults.tlsMode == .disable)
    }

    @Test func sslmodeAndRootCertificatesAreLibpqs() throws {
        let verified = try #require(PostgresLocation(url: "postgres://hearth@db/plant?sslmode=verify-full&sslrootcert=/etc/ca.pem"))
        #expect(verified.tlsMode == .verifyFull && verified.rootCertificates == "/etc/ca.pem")
        #expect(verified.description == "postgres://hearth@db:5432/plant?sslmode=verify-full")
        for mode in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            #expect(PostgresLocation(url: "postgres://hearth@db/plant?sslmode=\(mode)")?.tlsMode.rawValue == mode)
        }
        #expect(try PostgresLocation(url: "postgres://hearth@db/plant?sslmode=require")!.configuration().tls.isEnforced)
        #expect(try !PostgresLocation(url: "postgres://hearth@db/plant")!.configuration().tls.isAllowed)
        #expect(throws: (any Error).self, "an unreadable root certificate file is an error") {
            try PostgresLocation(url: "postgres://hearth@db/plant?sslmode=verify-ca&sslrootcert=/nonexistent.pem")!.configuration()
        }
    }

    @Test func otherTextIsNotALocation() {
        for text in ["file", "mysql://u@h/db", "postgres://h/db", "postgres://u@h", "postgres://u@h/", "postgres://u@/db", "postgres://u@h/a/b",
                     "postgres://u@h/db?sslmode=allow", "postgres://u@h/db?sslmode=bogus", "postgres://u@h/db?connect_timeout=3"] {
            #expect(PostgresLocation(url: text) == nil, "\(text)")
        }
    }
}
