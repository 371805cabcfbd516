;;; Interop driver: libgcrypt through guile-gcrypt, the bindings Guix signs with.
;;; Reads commands from the file named on the command line, one per line, arguments in
;;; base64; writes one answer line per command on stdout, in order:
;;;   genkey                     -> key <secret key file> <public key file>
;;;   sign SEC PUB MSG           -> sig <signature sexp, advanced form, as Guix makes it>
;;;   verify SIG MSG PUB         -> valid | unauthorized | hash-mismatch | invalid-signature | error
;;;   verify-narinfo TEXT PUB    -> the same, for the Signature: field of a narinfo
;;;   eddsa-sign MSG             -> sig <an EdDSA signature sexp, with its own Ed25519 key>
;;;   parse TEXT                 -> ok | error
;;; Keys are written as guix archive --generate-key writes them: (genkey (ecdsa (curve
;;; Ed25519) (flags rfc6979))), then the private-key and public-key parts, advanced form.

(use-modules (gcrypt pk-crypto)
             (gcrypt hash)
             (gcrypt base64)
             (rnrs bytevectors)
             (ice-9 rdelim)
             (ice-9 match))

(define (b64->bv s) (base64-decode s))
(define (b64->string s) (utf8->string (base64-decode s)))
(define (string->b64 s) (base64-encode (string->utf8 s)))

(define (sexp-text sexp) (canonical-sexp->string sexp))

(define (signature-of data secret public)
  ;; (signature <data> <sig-val> <public-key>), composed as one s-expression.
  (string->canonical-sexp
   (string-append "(signature " (sexp-text data) " " (sexp-text (sign data secret)) " "
                  (sexp-text public) ")")))

(define (check signature message public)
  ;; Guix's order: the signer is the expected key, the signed hash is the message's
  ;; SHA-256, then gcry_pk_verify.
  (catch #t
    (lambda ()
      (let ((subject (find-sexp-token signature 'public-key))
            (data (find-sexp-token signature 'data))
            (sig-val (find-sexp-token signature 'sig-val)))
        (cond ((not (equal? (canonical-sexp->sexp subject) (canonical-sexp->sexp public)))
               "unauthorized")
              ((not (equal? (hash-data->bytevector data) (sha256 message)))
               "hash-mismatch")
              ((verify sig-val data subject) "valid")
              (else "invalid-signature"))))
    (lambda _ "error")))

(define (narinfo-check text public)
  (catch #t
    (lambda ()
      (let* ((index (string-contains text "Signature:"))
             (above (string-take text index))
             (line (car (string-split (string-drop text (+ index 11)) #\newline))))
        (match (string-split line #\;)
          (("1" host sig)
           (check (string->canonical-sexp (utf8->string (base64-decode sig)))
                  (string->utf8 above) public))
          (_ "error"))))
    (lambda _ "error")))

(define (run line)
  (match (string-split line #\space)
    (("genkey")
     (let* ((key (generate-key (string->canonical-sexp
                                "(genkey (ecdsa (curve Ed25519) (flags rfc6979)))"))))
       (string-append "key " (string->b64 (sexp-text (find-sexp-token key 'private-key)))
                      " " (string->b64 (sexp-text (find-sexp-token key 'public-key))))))
    (("sign" sec pub msg)
     (let ((data (bytevector->hash-data (sha256 (b64->bv msg)) #:key-type 'ecc)))
       (string-append "sig " (string->b64 (sexp-text
                                           (signature-of data
                                                         (string->canonical-sexp (b64->string sec))
                                                         (string->canonical-sexp (b64->string pub))))))))
    (("verify" sig msg pub)
     (catch #t
       (lambda ()
         (check (string->canonical-sexp (b64->string sig)) (b64->bv msg)
                (string->canonical-sexp (b64->string pub))))
       (lambda _ "error")))
    (("verify-narinfo" text pub)
     (narinfo-check (b64->string text) (string->canonical-sexp (b64->string pub))))
    (("eddsa-sign" msg)
     (let* ((key (generate-key (string->canonical-sexp
                                "(genkey (ecc (curve Ed25519) (flags eddsa)))")))
            (data (string->canonical-sexp
                   (string-append "(data (flags eddsa) (hash-algo sha512) (value #"
                                  (string-upcase
                                   (apply string-append
                                          (map (lambda (b) (string-pad (number->string b 16) 2 #\0))
                                               (bytevector->u8-list (b64->bv msg)))))
                                  "#))"))))
       (string-append "sig " (string->b64 (sexp-text
                                           (signature-of data
                                                         (find-sexp-token key 'private-key)
                                                         (find-sexp-token key 'public-key)))))))
    (("parse" text)
     (catch 'gcry-error
       (lambda () (string->canonical-sexp (b64->string text)) "ok")
       (lambda _ "error")))
    (_ "error unknown command")))

(call-with-input-file (cadr (command-line))
  (lambda (port)
    (let loop ((count 0))
      (let ((line (read-line port)))
        (unless (eof-object? line)
          (display (run line))
          (newline)
          ;; Keys live in libgcrypt's small secure memory pool: let the collector free them.
          (when (zero? (modulo count 16)) (gc))
          (loop (+ count 1)))))))
