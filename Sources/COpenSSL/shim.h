/* COpenSSL: OpenSSL 3 libcrypto for Swift. The wrappers below exist because
 * the names are macros (Swift cannot import function-like macros) or take a
 * STACK_OF type that is only spelled through macros. Each can be deleted
 * once Swift imports the underlying macro. */
#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
#define OPENSSL_API_COMPAT 30000
#define OPENSSL_NO_DEPRECATED
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/cms.h>
#include <openssl/rand.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/ec.h>
#include <openssl/crypto.h>

/* OPENSSL_free is a macro adding file/line arguments. */
static inline void COpenSSL_free(void *p) { OPENSSL_free(p); }
/* BIO_get_mem_data, BIO_flush, BIO_set_close are BIO_ctrl macros. */
static inline long COpenSSL_BIO_get_mem_data(BIO *b, char **pp) { return BIO_get_mem_data(b, pp); }
static inline int COpenSSL_BIO_flush(BIO *b) { return (int)BIO_flush(b); }
/* STACK_OF(X509) helpers are macro-generated. */
static inline STACK_OF(X509) *COpenSSL_sk_X509_new_null(void) { return sk_X509_new_null(); }
static inline int COpenSSL_sk_X509_push(STACK_OF(X509) *sk, X509 *x) { return sk_X509_push(sk, x); }
static inline void COpenSSL_sk_X509_free(STACK_OF(X509) *sk) { sk_X509_free(sk); }
static inline int COpenSSL_sk_CMS_RecipientInfo_num(STACK_OF(CMS_RecipientInfo) *sk) { return sk_CMS_RecipientInfo_num(sk); }
static inline CMS_RecipientInfo *COpenSSL_sk_CMS_RecipientInfo_value(STACK_OF(CMS_RecipientInfo) *sk, int i) { return sk_CMS_RecipientInfo_value(sk, i); }
static inline int COpenSSL_sk_CMS_RecipientEncryptedKey_num(STACK_OF(CMS_RecipientEncryptedKey) *sk) { return sk_CMS_RecipientEncryptedKey_num(sk); }
static inline CMS_RecipientEncryptedKey *COpenSSL_sk_CMS_RecipientEncryptedKey_value(STACK_OF(CMS_RecipientEncryptedKey) *sk, int i) { return sk_CMS_RecipientEncryptedKey_value(sk, i); }
/* EVP_RSA_gen and EVP_EC_gen are macros over the variadic EVP_PKEY_Q_keygen. */
static inline EVP_PKEY *COpenSSL_EVP_RSA_gen(unsigned int bits) { return EVP_RSA_gen(bits); }
static inline EVP_PKEY *COpenSSL_EVP_EC_gen(const char *curve) { return EVP_EC_gen(curve); }
/* X509_getm_notBefore/After are functions, but ASN1_TIME adjustments go
 * through X509_gmtime_adj, a function too; no wrapper needed there. */
#endif
