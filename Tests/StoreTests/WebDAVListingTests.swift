@testable import Backend
import Foundation
import Testing

/// A PROPFIND answer comes from the server, which may be hostile: names
/// that would leave the directory, entries of other directories, and
/// sizes or dates that do not parse are never taken as they claim.
@Suite struct WebDAVListingTests {
    static func body(_ responses: [(href: String, props: String)]) -> [UInt8] {
        let parts = responses.map { "<D:response><D:href>\($0.href)</D:href><D:propstat><D:prop>\($0.props)</D:prop></D:propstat></D:response>" }
        return Array(("<?xml version=\"1.0\"?><D:multistatus xmlns:D=\"DAV:\">" + parts.joined() + "</D:multistatus>").utf8)
    }

    @Test func membersAreNamesInTheDirectoryAskedAbout() {
        let entries = WebDAVListing.parse(Self.body([
            ("/c1/snapshots/", "<D:resourcetype><D:collection/></D:resourcetype>"),
            ("/c1/snapshots/20261127T030000Z-0123456789abcdef.catalog", "<D:getcontentlength>120</D:getcontentlength><D:getlastmodified>Sun, 06 Dec 2026 02:15:53 GMT</D:getlastmodified>"),
            ("http://127.0.0.1:8085/c1/snapshots/x%20y", "<D:getcontentlength>7</D:getcontentlength>"),
            ("/c1/snapshots/..", ""),
            ("/c1/snapshots/.hidden", ""),
            ("/c1/snapshots/a%2Fb", ""),
            ("/c1/snapshots/huge", "<D:getcontentlength>99999999999999999999999</D:getcontentlength>"),
        ]), requestPath: "/c1/snapshots/")
        #expect(entries.filter(\.isSelf).count == 1)
        let members = entries.filter { !$0.isSelf }
        #expect(members.map(\.name) == ["20261127T030000Z-0123456789abcdef.catalog", "x y", "huge"])
        #expect(members[0].size == 120 && members[0].modified == Date(timeIntervalSince1970: 1_796_523_353))
        #expect(members[1].size == 7 && members[1].modified == nil)
        #expect(members[2].size == 0, "a length that does not parse counts as empty, not as a huge object")
    }

    @Test func datesOnlyInTheFormWebDAVServersGive() {
        #expect(HTTPDate.parse("Sun, 06 Dec 2026 02:15:53 GMT") == Date(timeIntervalSince1970: 1_796_523_353))
        for text in ["", "yesterday", "Sun, 06 Dec 2026 02:15:53 CET", "Sun, 06 Foo 2026 02:15:53 GMT", "Sun, 06 Dec 2026 02:15 GMT"] {
            #expect(HTTPDate.parse(text) == nil, "\(text)")
        }
    }
}

extension WebDAVListingTests {
    @Test func aHostileYearIsRefusedNotATrap() {
        #expect(HTTPDate.parse("Sun, 06 Dec -2147483648 02:15:53 GMT") == nil)
        #expect(HTTPDate.parse("Sun, 06 Dec 2147483647 02:15:53 GMT") == nil)
        #expect(HTTPDate.parse("Sun, 99 Dec 2026 99:15:53 GMT") == nil)
    }

    @Test func onlyTheFanOutDirectoriesAWriterMakesAreListed() {
        #expect(WebDAVBackend.isFanOutName("ab") && WebDAVBackend.isFanOutName("09"))
        for name in ["AB", "a", "abc", "..", "zz", "a/"] { #expect(!WebDAVBackend.isFanOutName(name), "\(name)") }
    }
}
