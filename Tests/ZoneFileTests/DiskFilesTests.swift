import Files
import Foundation
import TestSupport
import Testing
import ZoneFile
import ZoneModel

/// The real file system: reading refuses what would hang, writing replaces files atomically.
@Suite struct DiskFilesTests {
    @Test func atomicWriteReplacesTheFileAndLeavesNoTemporary() throws {
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/serials"
        let book = SerialBook(entries: ["lan example.com.": .init(contentHash: 42, serial: 2_024_060_100)])
        #expect(DiskFiles().writeAtomically(Array("old\n".utf8), to: path) == nil)
        #expect(DiskFiles().writeAtomically(Array(book.text.utf8), to: path) == nil)
        guard case .success(let bytes) = DiskFiles().read(path) else {
            Issue.record("cannot read back")
            return
        }
        #expect(SerialBook(text: String(decoding: bytes, as: UTF8.self)) == book)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["serials"])
        #expect(DiskFiles().mode(path) == 0o600)
    }

    @Test func atomicWriteReportsAMissingDirectory() {
        #expect(DiskFiles().writeAtomically([1], to: "/nonexistent-frontdoor/state") != nil)
    }

    @Test func readingAFIFOOrADirectoryFailsInsteadOfBlocking() throws {
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fifo = directory + "/pipe.zone"
        #expect(mkfifo(fifo, 0o600) == 0)
        if case .failure(let problem) = DiskFiles().read(fifo) {
            #expect(problem.description == "is not a regular file")
        } else {
            Issue.record("a FIFO was read as a file")
        }
        if case .failure(let problem) = DiskFiles().read(directory) {
            #expect(problem.description == "is a directory")
        } else {
            Issue.record("a directory was read as a file")
        }
        #expect(DiskFiles().mode(fifo) != nil)
    }
}
