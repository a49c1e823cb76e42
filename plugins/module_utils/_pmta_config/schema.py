# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PowerMTA v5.0 directive schema, as data.

PRIVATE to the collection: no compatibility promise outside it.
Standard library only (the PowerMTA test double imports this package standalone).

Source: the PowerMTA v5.0 User's Guide (public copy: jnotes/pmta-doc,
index.html), §3.3 "Configuration Directives", §10 "Advanced Features" and the
§14 "Directives index"; § numbers below refer to it. Names that real configs
use but the v5.0 guide lacks (legacy or newer versions) are listed with status
``legacy`` and produce a warning, never an error.

Table columns: NAME  SCOPES  TYPE  FLAGS  SECTION
- SCOPES: comma list of block tags where the directive may appear
  (``global`` is the top level);
- TYPE: a value type understood by ``values.checker`` (``-`` = no value);
- FLAGS: ``rep`` repeatable, ``once`` the guide says "only once" (a repeat is
  an error, not the usual duplicate warning), ``dep`` deprecated,
  ``leg`` legacy (not in the v5.0 guide), ``new`` only in the later v5.0
  guide (section numbers prefixed ``b``), ``opt`` value may be empty,
  ``-`` none; several flags are joined with ``;``.
"""

from __future__ import annotations

# Scope groups, to keep the table readable.
_SCOPE_ALIASES = {
    "listeners": "smtp-listener,transmissions-api-listener",
    "processors": "bounce-processor,feedback-loop-processor",
    "address-lists": "address-list,suppression-list",
}

DIRECTIVE_TABLE = """
# ---- Global (§3.3.1)
total-max-smtp-out                 global                 int                  -        3.3.1.1
total-max-smtp-in                  global                 int                  -        3.3.1.2
postmaster                         global                 email                rep      3.3.1.3
spool                              global                 path                 rep;dep  3.3.1.4
spool-delete-corrupted             global                 bool                 -        3.3.1.5
spool-min-free-space               global                 int                  dep      3.3.1.6
spool-max-recipients               global                 int-or:auto          -        3.3.1.7
run-as-root                        global                 bool                 -        3.3.1.8
smtp-server-tls-certificate        global                 words:1-2            -        3.3.1.9
smtp-server-tls-ca-file            global                 path                 -        3.3.1.10
smtp-server-tls-allow-sslv3        global                 bool                 -        3.3.1.11
smtp-server-tls-allow-tlsv1        global                 bool                 -        3.3.1.12
smtp-server-tls-allow-tlsv1.1      global                 bool                 -        3.3.1.13
smtp-server-tls-allow-tlsv1.2      global                 bool                 -        3.3.1.14
smtp-server-tls-ciphers            global                 string               -        3.3.1.15
smtp-source-host                   global,virtual-mta     source-host          rep      3.3.1.16
alias                              global,aliases         words:2              rep      3.3.1.17
smtp-ip                            global                 string               rep;dep  3.3.1.18
smtp-port                          global                 string               rep;dep  3.3.1.19
smtp-listener                      global                 listener             rep      3.3.1.20
custom-dsn-from-header             global                 string               -        3.3.1.21
smtp-await-slot                    global                 bool                 -        3.3.1.22
host-id                            global                 int                  -        3.3.1.23
domain-suffix                      global                 hostname             -        3.3.1.24
host-name                          global                 hostname             rep      3.3.1.25
host-name                          virtual-mta            hostname             -        3.3.12.5
name-server                        global                 cidr                 rep      3.3.1.26
thread-min-priority                global                 int                  -        3.3.1.27
thread-max-priority                global                 int                  -        3.3.1.27
thread-reuse                       global                 bool                 -        3.3.1.28
mailmerge-expands-undefined-variables global              bool                 -        3.3.1.29
pmc-acct-min-free-space            global                 size-or-unlimited    -        3.3.1.30
include                            global                 path                 rep      3.3.1.31
always-allow-relaying              global,source          bool                 -        3.3.1.32.1
relay-domain                       global,source          string               rep      3.3.1.32.2
relay-address                      global,source          email-or-regex       rep      3.3.1.32.3
relay-debug                        global,source          bool                 -        3.3.1.32.4
domain-key                         global                 domain-key           rep      3.3.1.33.1
invalid-virtual-mta-fallback       global                 name                 -        3.3.1.33.2
include-headers-from               global                 path                 -        3.3.1.33.3
domain-macro                       global                 domain-macro         rep      3.3.1.33.4
pickup                             global                 words:2              once     3.3.1.34.1
pickup-retry-interval              global                 time                 dep      3.3.1.34.2
pickup-remove-dot                  global                 bool                 -        3.3.1.34.3
dummy-smtp-ip                      global                 cidr                 -        3.3.1.35.1
dummy-smtp-port                    global                 port                 -        3.3.1.35.2
dummy-smtp-await-slot              global                 bool                 -        3.3.1.35.3
dummy-smtp-has-chunking            global                 bool                 -        3.3.1.35.4
dummy-smtp-has-pipelining          global                 bool                 -        3.3.1.35.5
dummy-smtp-has-verp                global                 bool                 -        3.3.1.35.6
dummy-smtp-latency                 global                 int                  -        3.3.1.35.7
dummy-smtp-update-stats            global                 bool                 -        3.3.1.35.8
http-mgmt-port                     global                 port                 -        3.3.1.36.1
http-redirect-to-https             global                 bool                 -        3.3.1.36.2
http-access                        global                 http-access          rep      3.3.1.36.3
http-csrf-protection               global                 bool                 -        3.3.1.36.4
http-api-key                       global                 api-key              rep      3.3.1.36.5
http-strict-transport-security-max-age global             int                  -        3.3.1.36.6
http-mgmt-source                   global                 cidr                 rep;dep  3.3.1.36.7
no-http-mgmt-source                global                 cidr                 rep;dep  3.3.1.36.7
http-tls-allow-sslv3               global                 bool                 -        3.3.1.36.8
http-tls-allow-tlsv1               global                 bool                 -        3.3.1.36.9
http-tls-allow-tlsv1.1             global                 bool                 -        3.3.1.36.10
http-tls-allow-tlsv1.2             global                 bool                 -        3.3.1.36.11
http-tls-ciphers                   global                 string               -        3.3.1.36.12
http-tls-ca-file                   global                 path                 -        3.3.1.36.13
http-log-tls                       global                 bool                 -        3.3.1.36.14
http-log-data                      global                 bool                 -        3.3.1.36.15
http-log-requests                  global                 bool                 -        3.3.1.36.16
http-default-max-items             global                 int                  -        3.3.1.36.17
http-default-sort-order            global                 enum:rcpt|name|size  -        3.3.1.36.18
log-auto-rotation                  global                 bool                 -        3.3.1.37.1
log-file                           global                 abs-path             -        3.3.1.37.2
log-rotate                         global                 int                  -        3.3.1.37.3
log-file-world-readable            global                 bool                 -        3.3.1.37.4
mx-connection-limit                global                 mx-limit             rep      3.3.1.38.1
ip-connection-limit                global                 cidr-int             rep      3.3.1.38.2
use-proxy                          global,virtual-mta     names                -        3.3.1.39
enable-signals                     global,virtual-mta,virtual-mta-pool  string  -        10.1.4.1.1

# ---- <spool> (§3.3.2)
delete-file-holders                spool                  bool                 -        3.3.2.1
deliver-only                       spool                  bool                 -        3.3.2.2
priority                           spool                  int:1-100            -        3.3.2.3
min-free-space                     spool,signals          size                 -        3.3.2.4

# ---- <bounce-processor>, <feedback-loop-processor> (§3.3.3, §3.3.4)
deliver-unmatched-email            processors             bool                 -        3.3.3.1
deliver-matched-email              processors             bool                 -        3.3.3.2
deliver-email                      processors             bool                 dep      3.3.3.3
# forward-* may be given more than once (§12.7)
forward-unmatched-to               processors             email                rep      3.3.3.4
forward-errors-to                  processors             email                rep      3.3.3.5

# ---- <address-list> (§3.3.5, §10.16)
address                            address-lists          string               rep      3.3.5.1
address-file                       address-lists          path                 rep      3.3.5.2
domain                             address-lists          string               rep      3.3.5.3

# ---- <email-patterns> (§3.3.6)
body-pattern-file                  email-patterns         path                 rep      3.3.6.1
log-match-info                     email-patterns         bool                 -        3.3.6.2

# ---- <source> (§3.3.7)
add-date-header                    source                 enum:no|yes|override|true|false  -  3.3.7.1
date-header-time                   source                 enum:reception|delivery  -    3.3.7.2
bcc                                source                 email                -        3.3.7.3
add-message-id-header              source                 bool                 -        3.3.7.4
add-received-header                source                 bool                 -        3.3.7.5
allow-auth                         source                 bool                 -        3.3.7.6
smtp-max-auth-failure-rate         source                 rate                 -        3.3.7.7
remove-header                      source,domain          names                -        3.3.7.8
require-auth                       source                 bool                 -        3.3.7.9
allow-mailmerge                    source                 bool                 -        3.3.7.10
allow-unencrypted-plain-auth       source                 bool                 -        3.3.7.11
allow-starttls                     source                 bool                 -        3.3.7.12
require-starttls-before-auth       source                 bool                 -        3.3.7.13
broken-auth-clients                source                 bool                 dep      3.3.7.14
verp-default                       source                 bool                 -        3.3.7.15
check-dkim-inbound                 source                 bool                 -        3.3.7.16
trace-dkim-check                   source                 bool                 -        3.3.7.17
trace-spf-check                    source                 bool                 -        3.3.7.18
check-spf-inbound                  source                 bool                 -        3.3.7.19
check-spf-inbound-best-guess       source                 bool                 dep      3.3.7.20
check-spf-inbound-max-void-lookups source                 int                  -        3.3.7.21
check-iprev-inbound                source                 bool                 -        3.3.7.22
trace-iprev-check                  source                 bool                 -        3.3.7.23
reject-iprev-check-temperror       source                 bool                 -        3.3.7.24
reject-iprev-check-permerror       source                 bool                 -        3.3.7.25
reject-iprev-check-fail            source                 bool                 -        3.3.7.26
suppress-local-dsn                 source                 bool                 -        3.3.7.27
dsn-return-default                 source                 enum:headers|full|system  -   3.3.7.28
default-virtual-mta                source                 name                 -        3.3.7.29
log-tls                            source,domain,transmissions-api  bool       -        3.3.7.30
reject-invalid-virtual-mta         source                 bool                 -        3.3.7.31
disconnect-on-transient-error      source                 bool                 -        3.3.7.32
hide-message-source                source                 bool                 -        3.3.7.33
max-message-size                   source                 size-or-unlimited    -        3.3.7.34
max-message-hops                   source                 int                  -        3.3.7.35
max-rcpt-per-message               source,domain          int-or:unlimited     -        3.3.7.36
too-many-rcpts-fails-message       source                 bool                 -        3.3.7.37
suppression-lists                  source                 names                -        3.3.7.38
pattern-list                       source                 name                 once     3.3.7.39
process-x-envid                    source                 bool                 -        3.3.7.40
process-x-dkim-options             source                 bool                 -        3.3.7.41
process-x-dkim-key                 source                 bool                 -        3.3.7.42
retain-x-dkim-key                  source                 bool                 -        3.3.7.43
jobid-prefix                       source                 string               -        3.3.7.44
process-x-job                      source                 bool                 -        3.3.7.45
jobid-header                       source                 string               -        3.3.7.46
retain-x-job                       source                 bool                 -        3.3.7.47
process-x-virtual-mta              source                 bool                 -        3.3.7.48
retain-x-virtual-mta               source                 bool                 -        3.3.7.49
add-x-virtual-mta-header           source                 bool                 -        3.3.7.50
source-group                       source                 name                 -        3.3.7.51
smtp-data-timeout                  source                 time                 -        3.3.7.52
smtp-command-timeout               source                 time                 -        3.3.7.53
process-x-schedule                 source                 bool                 -        3.3.7.54
retain-x-schedule                  source                 bool                 -        3.3.7.55
retain-x-dkim-options              source                 bool                 -        3.3.7.56
allow-chunking                     source                 bool                 -        3.3.7.57
allow-smtputf8                     source                 bool                 -        3.3.7.58
smtp-service                       source                 bool                 -        3.3.7.59
log-connections                    source,domain          bool                 -        3.3.7.60
log-commands                       source,domain          bool                 -        3.3.7.61
log-data                           source,domain,transmissions-api  bool       -        3.3.7.62
allow-empty-x-virtual-mta          source                 bool                 -        3.3.7.63
accept-invalid-recipients          source                 bool                 -        3.3.7.64
reject-spf-check-temperror         source                 bool                 -        3.3.7.65
reject-spf-check-permerror         source                 bool                 -        3.3.7.66
reject-spf-check-fail              source                 bool                 -        3.3.7.67
always-allow-api-submission        source                 bool                 -        3.3.7.68
auto-qualify-domain                source                 bool                 -        3.3.7.69
include                            source                 path                 rep      3.3.7.70

# ---- <smtp-user> (§3.3.8)
password                           smtp-user              string               -        3.3.8.1
authentication-method              smtp-user              enum:password|system|certificate  -  3.3.8.2
tls-certificate                    smtp-user              words:1-2            -        3.3.8.3
source                             smtp-user              name                 -        3.3.8.4

# ---- <source-group> (§3.3.9)
max-smtp-in                        source-group           int-or:unlimited     -        3.3.9.1
reserved-smtp-in                   source-group           int-or:unlimited     -        3.3.9.2

# ---- <domain> (§3.3.10)
max-errors-per-connection          domain                 int-or:unlimited     -        3.3.10.1
check-spf-outbound                 domain                 bool                 -        3.3.10.2
dsn-format                         domain                 enum:standard|plain-text  -   3.3.10.3
log-resolution                     domain                 bool                 -        3.3.10.4
log-transfer-failures              domain                 bool                 -        3.3.10.5
log-disabled-ips                   domain                 bool                 -        3.3.10.7
max-events-recorded                domain                 int                  -        3.3.10.8
disable-acct-records               domain                 records              -        3.3.10.9
deliver-local-dsn                  domain                 bool                 dep      3.3.10.10
bounce-after                       domain                 time                 -        3.3.10.11
bcc-upon-delivery                  domain                 email                -        3.3.10.12
allow-priority-interruption        domain                 bool                 -        3.3.10.13
allow-priority-interruption-during-transfer domain        bool                 -        3.3.10.14
queue-priority                     domain                 int:0-100            -        3.3.10.15
track-recipient-events             domain                 bool                 -        3.3.10.16
delivery-priority                  domain                 string               dep      3.3.10.17
notify-of-delay-every              domain                 time-or-never        -        3.3.10.18
dkim-sign                          domain                 enum:yes|no|true|false|if-x-dkim-options-present  -  3.3.10.19
dkim-add-body-limit                domain                 bool                 -        3.3.10.20
dkim-add-timestamp                 domain                 bool                 -        3.3.10.21
dkim-algorithm                     domain                 enum:rsa-sha1|rsa-sha256|ed25519-sha256  -  3.3.10.22
dkim-body-canon                    domain                 enum:simple|relaxed  -        3.3.10.23
dkim-headers-canon                 domain                 enum:simple|relaxed  -        3.3.10.24
dkim-expire-after                  domain                 time-or-never        -        3.3.10.25
dkim-query-method                  domain                 string               -        3.3.10.26
dkim-headers                       domain                 string               rep      3.3.10.27
dkim-identity                      domain                 string               -        3.3.10.28
dkim-identity-fallback             domain                 string               -        3.3.10.29
dkim-disallow-adding-headers       domain                 names                -        3.3.10.30
queue-to                           domain                 string               -        3.3.10.31
source-ip-max-msg-rate             domain                 cidr-rate            rep      3.3.10.32
max-msg-rate                       domain                 rate                 -        3.3.10.33
backoff-max-msg-rate               domain                 rate                 -        3.3.10.34
max-msg-per-hour                   domain                 int                  dep      3.3.10.35
backoff-max-msg-per-hour           domain                 int                  dep      3.3.10.36
max-data-volume-rate               domain                 volume-rate          -        3.3.10.37
backoff-max-data-volume-rate       domain                 volume-rate          -        3.3.10.38
retry-after                        domain                 time-list            -        3.3.10.39
backoff-retry-after                domain                 time-list            -        3.3.10.40
retry-recipients-after             domain                 time                 -        3.3.10.41
backoff-notify                     domain                 email-list           -        3.3.10.42
disabled-source-ip-notify          domain                 email-list           -        3.3.10.43
backoff-to-normal-after            domain                 time-or-never        -        3.3.10.44
backoff-to-normal-after-delivery   domain                 bool                 -        3.3.10.45
backoff-upon-all-sources-disabled  domain                 bool                 -        3.3.10.46
reenable-source-ip-after           domain                 time-or-never        -        3.3.10.47
max-cold-virtual-mta-msg           domain                 rate-list            -        3.3.10.48
reroute-to-virtual-mta             domain                 name                 -        3.3.10.49
backoff-reroute-to-virtual-mta     domain                 name                 -        3.3.10.50
type                               domain                 enum:smtp|pipe|file|discard|http-delivery  -  3.3.10.51
allow-cancel-during-transfer       domain                 bool                 -        3.3.10.52
auth-username                      domain                 string               -        3.3.10.53
smtp-data-termination-timeout      domain                 time                 -        3.3.10.54
auth-password                      domain                 string               -        3.3.10.55
use-unencrypted-plain-auth         domain                 bool                 -        3.3.10.56
smtp-553-means-invalid-mailbox     domain                 bool                 -        3.3.10.57
smtp-421-means-mx-unavailable      domain                 bool                 -        3.3.10.58
replace-smtp-421-service-response  domain                 bool                 -        3.3.10.59
bounce-upon-no-mx                  domain                 bool-or-time         -        3.3.10.60
bounce-upon-5xx-greeting           domain                 bool                 -        3.3.10.61
bounce-upon-pix-transfer-failure   domain                 bool                 -        3.3.10.62
bounce-upon-transfer-failure       domain                 bool                 -        3.3.10.63
connect-timeout                    domain                 time                 -        3.3.10.64
smtp-greeting-timeout              domain                 time                 -        3.3.10.65
data-send-timeout                  domain                 time                 -        3.3.10.66
ignore-8bitmime                    domain                 bool                 -        3.3.10.67
ignore-chunking                    domain                 bool                 -        3.3.10.68
ignore-pipelining                  domain                 bool                 -        3.3.10.69
ignore-dsn                         domain                 bool                 -        3.3.10.70
max-msg-per-connection             domain                 int                  -        3.3.10.71
max-rcpt-per-transaction           domain                 int                  -        3.3.10.72
max-smtp-out                       domain                 int                  -        3.3.10.74
backoff-max-smtp-out               domain                 int                  -        3.3.10.75
max-smtp-out-per-source-ip         domain                 int                  dep      3.3.10.76
source-ip-max-smtp-out             domain                 cidr-int             rep      3.3.10.77
smtp-out-rampup-interval           domain                 time                 -        3.3.10.78
max-connect-rate                   domain                 rate                 -        3.3.10.79
source-ip-max-connect-rate         domain                 cidr-rate            rep      3.3.10.80
connection-idle-timeout            domain                 time                 -        3.3.10.81
source-ip-max-data-volume-rate     domain                 cidr-volume-rate     rep      3.3.10.83
backoff-max-connect-rate           domain                 rate                 -        3.3.10.84
retry-upon-new-mail                domain                 bool                 -        3.3.10.85
pix-bug-workaround                 domain                 bool                 -        3.3.10.86
route                              domain                 string               dep      3.3.10.87
default-smtp-port                  domain                 port                 -        3.3.10.88
smtp-hosts                         domain                 smtp-hosts           -        3.3.10.89
smtp-pattern-list                  domain                 name                 -        3.3.10.90
assume-delivery-upon-data-termination-timeout domain      bool                 -        3.3.10.91
disable-mx-rollup                  domain                 bool                 -        3.3.10.92
include                            domain                 path                 rep      3.3.10.93
use-starttls                       domain                 bool                 -        3.3.10.94.1
require-starttls                   domain                 bool                 -        3.3.10.94.2
use-dane                           domain                 bool                 -        3.3.10.94.3
reuse-ssl-session                  domain                 bool                 -        3.3.10.94.4
smtp-tls-allow-tlsv1               domain                 bool                 -        3.3.10.94.5
smtp-tls-allow-tlsv1.1             domain                 bool                 -        3.3.10.94.6
smtp-tls-allow-tlsv1.2             domain                 bool                 -        3.3.10.94.7
smtp-tls-allow-sslv3               domain                 bool                 -        3.3.10.94.8
smtp-tls-ca-file                   domain                 path                 -        3.3.10.94.9
smtp-tls-ciphers                   domain                 string               -        3.3.10.94.10
discard-as-bounce                  domain                 bool                 -        3.3.10.95.1
file-format                        domain                 enum:newfile-plain|newfile-pickup|append-mbox  -  3.3.10.96.1
file-destination                   domain                 path                 -        3.3.10.96.2
command                            domain                 string               -        3.3.10.97.1
macro-variables-preserve-case      domain                 bool                 -        3.3.10.97.2
http-delivery-url                  domain                 http-url             -        3.3.10.98.1
http-delivery-extra-headers        domain                 path                 -        3.3.10.98.2
add-x-msys-api-header              domain                 bool                 -        3.3.10.99.1
sparkpost-sandbox                  domain                 bool                 -        3.3.10.99.2
sparkpost-ip-pool                  domain                 string               -        3.3.10.99.3
log-messages                       domain                 bool                 -        12.6
mx-connection-attempts             domain                 int                  -        6.3.15
smtp-client-certificate            domain                 words:1-2            -        6.3.15
smtp-multiple-line-response-timeout domain                time                 -        6.3.15
second-dkim-add-body-limit         domain                 bool                 -        10.6.4
second-dkim-add-timestamp          domain                 bool                 -        10.6.4
second-dkim-algorithm              domain                 enum:rsa-sha1|rsa-sha256|ed25519-sha256  -  10.6.4
second-dkim-body-canon             domain                 enum:simple|relaxed  -        10.6.4
second-dkim-disallow-adding-headers domain                names                -        10.6.4
second-dkim-expire-after           domain                 time-or-never        -        10.6.4
second-dkim-headers                domain                 string               rep      10.6.4
second-dkim-headers-canon          domain                 enum:simple|relaxed  -        10.6.4
second-dkim-identity               domain                 string               -        10.6.4
second-dkim-identity-fallback      domain                 string               -        10.6.4
second-dkim-sign                   domain                 enum:yes|no|true|false|if-x-dkim-options-present  -  10.6.4
second-dkim-query-method           domain                 string               -        10.6.4

# ---- <acct-file> (§3.3.11)
delete-after                       acct-file              time-or-never        -        3.3.11.1
move-to                            acct-file              path                 -        3.3.11.2
move-interval                      acct-file              time                 -        3.3.11.3
max-size                           acct-file              size                 -        3.3.11.4
queue-filter                       acct-file              queue-filter         -        3.3.11.5
retry-interval                     acct-file              time                 -        3.3.11.6
iso-times                          acct-file              bool                 -        3.3.11.7
user-string                        acct-file              string               -        3.3.11.8
write-timeout                      acct-file              time                 -        3.3.11.9
map-header-to-field                acct-file              map-header           rep      3.3.11.10
records                            acct-file              records              once     3.3.11.11
record-fields                      acct-file              record-fields        rep      3.3.11.12
world-readable                     acct-file              bool                 -        3.3.11.13
count-moved-records                acct-file              bool                 -        3.3.11.14
sync                               acct-file              bool                 -        3.3.11.15
privacy-policy                     acct-file              privacy-policy       -        3.3.11.16

# ---- <virtual-mta> (§3.3.12) and <virtual-mta-pool> (§3.3.13)
max-smtp-msg-rate                  virtual-mta,virtual-mta-pool  rate          -        3.3.12.2
max-smtp-data-volume-rate          virtual-mta,virtual-mta-pool  volume-rate   -        3.3.12.3
cold-virtual-mta                   virtual-mta            name                 rep      3.3.12.4
domain-key                         virtual-mta,virtual-mta-pool,domain-key-list  domain-key  rep  3.3.12.6
include-headers-from               virtual-mta,virtual-mta-pool  path          -        3.3.12.7
max-smtp-out                       virtual-mta,virtual-mta-pool  int-or:unlimited  -    3.3.12.8
rewrite-list                       virtual-mta,virtual-mta-pool,source  name   -        3.3.12.9
include                            virtual-mta            path                 rep      3.3.12.10
virtual-mta                        virtual-mta-pool       name                 rep      3.3.13.1

# ---- <pattern-list> (§3.3.14), <smtp-pattern-list> (§3.3.15)
header                             pattern-list           header-rule          rep      3.3.14.1
mail-from                          pattern-list           pattern-rule         rep      3.3.14.2
rcpt-to                            pattern-list           pattern-rule         rep      3.3.14.3
*                                  pattern-list           pattern-result       rep      3.3.14
reply                              smtp-pattern-list      reply                rep      3.3.15
include                            smtp-pattern-list      path                 rep      3.3.15.1

# ---- <dns> (§3.3.16)
precached-domains-file             dns                    path                 -        3.3.16.1
precached-refresh-interval         dns                    time                 -        3.3.16.2
precached-max-domains              dns                    int                  -        3.3.16.3

# ---- <smtp-listener> (§3.3.17), <transmissions-api-listener> (§3.3.21)
await-slot                         smtp-listener          bool                 -        3.3.17.1
immediate-tls                      smtp-listener          bool                 -        3.3.17.2
source                             smtp-listener          name                 -        3.3.17.3
tls-certificate                    listeners              words:1-2            -        3.3.17.4
tls-allow-tlsv1.2                  listeners              bool                 -        3.3.17.5
tls-allow-tlsv1.1                  listeners              bool                 -        3.3.17.6
tls-allow-tlsv1                    listeners              bool                 -        3.3.17.7
tls-allow-sslv3                    listeners              bool                 -        3.3.17.8
tls-ciphers                        listeners              string               -        3.3.17.9
tls-ca-file                        listeners              path                 -        3.3.17.10

# ---- <rewrite-list> (§3.3.18)
mail-from                          rewrite-list           rewrite-mail-from    rep      3.3.18.1
from-domain                        rewrite-list           from-domain          rep      3.3.18.2

# ---- <transmissions-api> (§3.3.20)
log-requests                       transmissions-api      bool                 -        3.3.20.1
api-key                            transmissions-api      api-key              rep      3.3.20.1.1

# ---- <signals> and <signals-filter> (§10.1.4)
api-key                            signals                hex40                -        10.1.4.2.1
upload-url                         signals                string               -        10.1.4.2.2
engagement-tracking                signals                string               -        10.1.4.2.3
custom-message-id-header           signals                string               -        10.1.4.2.4
process-x-sp-subaccount-id         signals                bool                 -        10.1.4.2.5
retain-x-sp-subaccount-id          signals                bool                 -        10.1.4.2.6
log-verbose                        signals                bool                 -        10.1.4.2.7
privacy-policy                     signals                enum:retain|sha1     -        10.1.4.2.9
sender-or-from                     signals-filter         words:2              rep      10.1.4.3.1

# ---- <proxy> (§10.2)
server                             proxy                  host-port            -        10.2.1.1.1
client                             proxy                  proxy-client         rep      10.2.1.1.2

# ---- <mx-rollup-list> (§10.17)
mx                                 mx-rollup-list         mx-rollup            rep      10.17

# ---- <bounce-category-patterns> (§10.8): "/regex/ category" lines
/                                  bounce-category-patterns  regex-result      rep      10.8

# ---- Only in the later v5.0 guide (Kira41/pmta "PMTA UsersGuide.html", (c)2020; sections refer to it):
# accepted with a warning, because a 5.0 release older than that guide refuses them.
smtp-server-tls-allow-tlsv1.3      global                 bool                 new      b3.3.1.15
smtp-server-tls-v1.3-ciphersuites  global                 string               new      b3.3.1.17
smtp-server-tls-dh-key-length      global                 int                  new      b3.3.1.18
smtp-proxy-source-host             global,virtual-mta     string               rep;new  b3.3.1.20
dsn-failed-from-template           global                 string               new      b3.3.1.26
dsn-failed-subject-template        global                 string               new      b3.3.1.27
dsn-failed-body-template-from      global                 string               new      b3.3.1.28
track-time-first-attempt           global                 bool                 new      b3.3.1.38
volume-audit-api-key               global                 string               new      b3.3.1.39
edns-udp-length                    global                 int                  new      b3.3.1.40
http-tls-allow-tlsv1.3             global                 bool                 new      b3.3.1.46.12
http-tls-tlsv1.3-ciphersuites      global                 string               new      b3.3.1.46.14
http-tls-dh-key-length             global                 int                  new      b3.3.1.46.15
max-memory-usage-percent           global                 int:1-100            new      b3.3.1.50
retry-after-dns-error              domain                 time                 new      b3.3.10.42
use-mta-sts                        domain                 bool                 new      b3.3.10.95.4
smtp-tls-allow-tlsv1.3             domain                 bool                 new      b3.3.10.95.9
smtp-tls-tlsv1.3-ciphersuites      domain                 string               new      b3.3.10.95.14
http-webhook-url                   acct-file              string               new      b3.3.11.17
http-webhook-extra-headers         acct-file              path                 new      b3.3.11.18
http-webhook-certificate           acct-file              words:1-2            new      b3.3.11.19
http-webhook-ca-file               acct-file              path                 new      b3.3.11.20
http-webhook-max-interval          acct-file              time                 new      b3.3.11.21
http-webhook-transfer-encoding     acct-file              string               new      b3.3.11.22
http-webhook-log-verbose           acct-file              bool                 new      b3.3.11.23
http-webhook-connect-timeout       acct-file              time                 new      b3.3.11.24
http-webhook-io-timeout            acct-file              time                 new      b3.3.11.25
proxy-protocol                     virtual-mta            int:1-2              new      b3.3.12.8
tls-allow-tlsv1.3                  listeners              bool                 new      b3.3.17.5
tls-tlsv1.3-ciphersuites           listeners              string               new      b3.3.17.11
tls-dh-key-length                  listeners              int                  new      b3.3.17.12
protocol-version                   proxy                  int:1-2              new      b3.3.22.3
server-url                         vault                  string               new      b3.3.23.1
access-token                       vault                  string               new      b3.3.23.2
cache-ttl                          vault                  time                 new      b3.3.23.3

# ---- Seen in working public configs but not in the v5.0 guide: warnings only.
dk-sign                            domain                 bool                 leg      -
remove-received-headers            source                 bool                 leg      -
sync-msg-create                    global                 bool                 leg      -
sync-msg-update                    global                 bool                 leg      -
auto-cold-virtual-mta              virtual-mta            string               dep      4.5-release-notes
"""

# What to use instead of a deprecated directive, or why a legacy one warns.
REPLACEMENTS = {
    "spool": "<spool DIR> block",
    "spool-min-free-space": "min-free-space in <spool>",
    "smtp-ip": "smtp-listener",
    "smtp-port": "smtp-listener",
    "pickup-retry-interval": "nothing (remove it)",
    "http-mgmt-source": "http-access",
    "no-http-mgmt-source": "http-access",
    "deliver-email": "deliver-matched-email/deliver-unmatched-email",
    "broken-auth-clients": "nothing (remove it)",
    "check-spf-inbound-best-guess": "nothing (remove it)",
    "deliver-local-dsn": "suppress-local-dsn in <source>",
    "delivery-priority": "queue-priority",
    "max-msg-per-hour": "max-msg-rate (e.g. 500/h)",
    "backoff-max-msg-per-hour": "backoff-max-msg-rate",
    "max-smtp-out-per-source-ip": "source-ip-max-smtp-out",
    "route": "smtp-hosts",
    "dk-sign": "legacy DomainKeys (3.x/4.x), not in v5.0, use dkim-sign",
    "remove-received-headers": "seen in real configs but not in the v5.0 guide, consider add-received-header false",
    "sync-msg-create": "seen in real configs but not in the v5.0 guide",
    "sync-msg-update": "seen in real configs but not in the v5.0 guide",
    "auto-cold-virtual-mta": "cold-virtual-mta (deprecated in 4.5)",
}

# Blocks: TAG  PARENTS  ARGUMENT  SECTION
#   ARGUMENT: name (one token, required), any (required), none (forbidden),
#   optional, cidr-or-name (source), listener (CIDR:PORT), domain (pattern).
BLOCK_TABLE = """
virtual-mta                 global                                     name      3.3.12
virtual-mta-pool            global                                     name      3.3.13
domain                      global,virtual-mta,virtual-mta-pool        domain    3.3.10
source                      global                                     source    3.3.7
source-group                global                                     name      3.3.9
smtp-user                   global                                     name      3.3.8
acct-file                   global                                     any       3.3.11
spool                       global                                     any       3.3.2
smtp-pattern-list           global                                     name      3.3.15
pattern-list                global,pattern-list                        name      3.3.14
smtp-listener               global                                     listener  3.3.17
bounce-processor            global                                     none      3.3.3
feedback-loop-processor     global                                     none      3.3.4
address-list                global,bounce-processor,feedback-loop-processor  optional  3.3.5
email-patterns              bounce-processor,feedback-loop-processor   none      3.3.6
mx-rollup-list              global                                     none      10.17
domain-key-list             global                                     name      3.3.19
rewrite-list                global                                     name      3.3.18
dns                         global                                     none      3.3.16
proxy                       global                                     name      10.2.1.1
transmissions-api           global                                     none      3.3.20
transmissions-api-listener  global                                     listener  3.3.21
signals                     global                                     none      10.1.4.2
signals-filter              global                                     name      10.1.4.3
bounce-category-patterns    global                                     none      10.8
aliases                     global                                     none      12.9
suppression-list            global                                     name      3.3.7.38
vault                       global                                     none      b3.3.23
"""

# Names that do not exist, with what to use instead (pmta.md §1; seen on the web).
KNOWN_MISTAKES = {
    "smtp-max-connection": "max-smtp-out (per queue), total-max-smtp-out or mx-connection-limit",
    "throttle": "max-msg-rate or max-connect-rate in <domain>, max-smtp-msg-rate in <virtual-mta>",
    "hide-received-header": "add-received-header false, hide-message-source true or remove-header",
    "queue-scan-interval": "retry-after, retry-upon-new-mail or smtp-out-rampup-interval",
    "max-message-rate": "max-msg-rate",
    "max-conn-rate": "max-connect-rate",
    "smtp-source-ip": "smtp-source-host IP HOSTNAME",
    "helo-domain": "host-name",
    "dkim-selector": "domain-key SELECTOR,DOMAIN,KEYFILE",
    "acct-record": "records in <acct-file>",
    "log-level": "log-connections, log-commands, log-data or log-transfer-failures",
    "max-queue-size": "(none: PowerMTA has no queue size limit; use bounce-after)",
    "mx-rollup": "an <mx-rollup-list> block (or disable-mx-rollup per domain)",
    "virtual-mta-pool-map": "<virtual-mta-pool NAME> with virtual-mta lines",
    "http-mgmt-allow": "http-access CIDR LEVEL",
    "smtp-source-hostname": "smtp-source-host IP HOSTNAME",
}

NEWER_NOTE = "documented only in the later v5.0 guide (2020); older 5.0 releases refuse it, so check your version"

# Blocks only the later guide documents (see NEWER_NOTE).
NEWER_BLOCKS = frozenset({"vault"})

# Blocks the guide shows once but documents elsewhere differently: accepted with a warning.
UNCERTAIN_BLOCKS = {
    "suppression-list": "only the §3.3.7.38 example uses it; §10.16 defines lists as <address-list NAME>",
}

KNOWN_BLOCK_MISTAKES = {
    "vmta": "<virtual-mta NAME>",
    "limits": "per-domain limits inside <domain NAME>",
    "pool": "<virtual-mta-pool NAME>",
    "virtual-mta-group": "<virtual-mta-pool NAME>",
}


class DirectiveSpec:
    """One row of the directive table, for one scope."""

    __slots__ = ("name", "scopes", "type", "repeatable", "status", "note", "section", "optional", "only_once")

    def __init__(self, name, scopes, type_name, flags, section):
        self.name = name
        self.scopes = scopes
        self.type = type_name
        self.section = section
        self.repeatable = False
        self.optional = False
        self.only_once = False
        self.status = "current"
        self.note = ""
        for flag in flags.split(";") if flags != "-" else ():
            key, _sep, value = flag.partition("=")
            if key == "rep":
                self.repeatable = True
            elif key == "opt":
                self.optional = True
            elif key == "once":
                self.only_once = True
            elif key == "dep":
                self.status = "deprecated"
                self.note = REPLACEMENTS[name]
            elif key == "leg":
                self.status = "legacy"
                self.note = REPLACEMENTS[name]
            elif key == "new":
                self.status = "newer"
                self.note = NEWER_NOTE
            else:
                raise ValueError("unknown flag %r for %s" % (flag, name))

    def to_dict(self):
        return {
            "name": self.name,
            "scopes": sorted(self.scopes),
            "type": self.type,
            "repeatable": self.repeatable,
            "status": self.status,
            "note": self.note,
            "section": self.section,
        }


class BlockSpec:
    __slots__ = ("tag", "parents", "argument", "section")

    def __init__(self, tag, parents, argument, section):
        self.tag = tag
        self.parents = parents
        self.argument = argument
        self.section = section


def _expand_scopes(text):
    scopes = []
    for scope in text.split(","):
        scopes.extend(_SCOPE_ALIASES.get(scope, scope).split(","))
    return frozenset(scopes)


def _load():
    directives = {}  # name -> {scope: DirectiveSpec}
    for raw in DIRECTIVE_TABLE.splitlines():
        raw = raw.strip()
        if not raw or raw.startswith("#"):
            continue
        name, scopes, type_name, flags, section = raw.split()
        spec = DirectiveSpec(name, _expand_scopes(scopes), type_name, flags, section)
        by_scope = directives.setdefault(name, {})
        for scope in spec.scopes:
            if scope in by_scope:
                raise ValueError("directive %s listed twice for <%s>" % (name, scope))
            by_scope[scope] = spec
    blocks = {}
    for raw in BLOCK_TABLE.splitlines():
        raw = raw.strip()
        if not raw:
            continue
        tag, parents, argument, section = raw.split()
        blocks[tag] = BlockSpec(tag, _expand_scopes(parents), argument, section)
    return directives, blocks


DIRECTIVES, BLOCKS = _load()
ALL_SCOPES = frozenset({"global"}) | frozenset(BLOCKS)


def lookup(name, scope):
    """The DirectiveSpec for ``name`` in block ``scope``; None if not allowed there."""
    by_scope = DIRECTIVES.get(name)
    if by_scope is None:
        return None
    return by_scope.get(scope)


def cite(section):
    """A guide reference for messages: ``§3.3.10.74``, ``later guide §3.3.1.15`` or ``not in the guide``."""
    if section == EXTRA_SECTION:
        return "declared by the operator"
    if section.startswith("b"):
        return "later guide §" + section[1:]
    if section[:1].isdigit():
        return "§" + section
    return "not in the guide"


def scopes_of(name):
    by_scope = DIRECTIVES.get(name)
    return sorted(by_scope) if by_scope else []


EXTRA_SECTION = "declared"
_EXTRA_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def with_extra_directives(extra_directives):
    """The directive table plus directives an operator declares for their PowerMTA build.

    ``extra_directives``: a list of ``{"name": NAME, "scopes": [SCOPE, ...]}``, a scope being
    ``global`` or a block tag (``domain``, ``virtual-mta``, ``source``, ...). A declared directive
    takes any value and may repeat. A name the schema knows gains the declared scopes.
    Returns a new ``{name: {scope: DirectiveSpec}}``; ValueError names the bad entry and the fix.
    """
    merged = {name: dict(by_scope) for name, by_scope in DIRECTIVES.items()}
    for index, item in enumerate(extra_directives or ()):
        where = "extra directive #%d" % (index + 1)
        if not isinstance(item, dict):
            raise ValueError("%s: expected a mapping {name: NAME, scopes: [SCOPE, ...]}, got %r" % (where, item))
        name = str(item.get("name") or "").strip().lower()
        if not name or not name[0].isalpha() or not set(name) <= _EXTRA_NAME_CHARS:
            raise ValueError("%s: name %r is not a directive name (letters, digits, -, _ and .)" % (where, name))
        scopes = item.get("scopes") or ["global"]
        if isinstance(scopes, str):
            scopes = [scopes]
        unknown = sorted(str(scope) for scope in scopes if scope not in ALL_SCOPES)
        if unknown:
            raise ValueError(
                "%s (%s): unknown scope %s; use global or a block tag: %s"
                % (where, name, ", ".join(unknown), ", ".join(sorted(ALL_SCOPES)))
            )
        unexpected = sorted(set(item) - {"name", "scopes"})
        if unexpected:
            raise ValueError("%s (%s): unknown key %s; only name and scopes" % (where, name, ", ".join(unexpected)))
        spec = DirectiveSpec(name, frozenset(scopes), "string", "rep;opt", EXTRA_SECTION)
        by_scope = merged.setdefault(name, {})
        for scope in scopes:
            by_scope.setdefault(scope, spec)
    return merged
