// Seal: everything that turns plaintext into what fbk stores and back.
// Compression (libzstd) and CMS encryption and hashing (OpenSSL libcrypto)
// are wrapped here behind Swift types; no C type appears in the public API.
