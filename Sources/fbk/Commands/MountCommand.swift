import ArgumentParser
import FoundationEssentials
import Glibc
import Platform
import Mount

/// `fbk mount`: every snapshot as a read-only file system.
struct MountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Show every snapshot as a read-only FUSE file system (needs the private key).",
        discussion: """
            MOUNTPOINT/snapshots/ID/… holds each snapshot's files (paths as fbk \
            ls shows them); MOUNTPOINT/latest links to the newest. Files are \
            read as they are asked for: only the chunks a read touches are \
            fetched, each pack decrypted once into the private work directory. \
            Runs in the foreground until unmounted (fusermount3 -u MOUNTPOINT) \
            or stopped with Ctrl-C or SIGTERM. Needs /dev/fuse and fusermount3 \
            (Debian's fuse3), or root.

            Example:
              fbk mount --from /srv/fbk --client manning --signing-key bundles/manning/signing.pub --key private.pem /mnt/fbk
            """
    )

    @OptionGroup var repository: RepositoryOptions
    @Argument(help: "An empty directory to mount on.")
    var mountpoint: String

    func run() throws {
        let status: Int32
        do {
            var isDir: Bool = false
            guard FileManager.default.fileExists(atPath: mountpoint, isDirectory: &isDir), isDir else {
                throw CLIError(message: "\(mountpoint) is not a directory: make an empty one to mount on", status: ExitStatus.usage)
            }
            guard FileManager.default.fileExists(atPath: "/dev/fuse") else {
                throw CLIError(message: "/dev/fuse is missing: load the fuse module (modprobe fuse), or in a container give it the device", status: ExitStatus.usage)
            }
            // libfuse changes to / once mounted: storage roots must not be relative.
            var options = repository
            options.source.from = options.source.from.map { $0.contains("://") ? $0 : URL(fileURLWithPath: $0).standardizedFileURL.path }
            let repo = try options.openRepository()
            status = FuseMount.run(repository: repo, mountpoint: mountpoint)
        } catch {
            throw fail(error)
        }
        if status != 0 { throw ExitCode(ExitStatus.software) }
    }
}
