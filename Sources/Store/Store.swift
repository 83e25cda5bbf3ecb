// Store: fbk's formats, local index, mirrors, archiver, restorer and checker.
// It builds on Chunker (cut points) and Seal (compression, encryption,
// hashing). The repository format it writes is specified in FORMAT.md.
