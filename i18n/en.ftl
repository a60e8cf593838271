# wolkvox-dispatch: every line written for a person, in English.
# The Spanish catalogue (es.ftl) has the same ids with the same placeables;
# `cargo test i18n` checks it. Braces in text are written {"{"} and {"}"}.

## The command line (--help). `cli-<command>-<flag>`, or `cli-arg-<flag>` when
## several commands share the text.

cli-root-about = Send a spreadsheet of contacts as WhatsApp messages through the Wolkvox API, safely and as fast as the API allows
cli-arg-lang = The language of the messages: es or en [default: the config file's ui.lang, else the locale: LC_ALL, LC_MESSAGES, LANG]
cli-send-about = Validate a contact list, then send every valid row and record each outcome
cli-validate-about = Check a contact list without sending anything (no token needed)
cli-report-about = Summarize a results file (also one still being written): counts, failures, next step
cli-reconcile-about = Settle `unknown` rows with Wolkvox's own report of sent messages (cdr_3): those it lists become `sent`, those absent from it `not_sent` (a plain --resume sends them once)
cli-arg-input = The contact list: CSV or other delimited text, or a spreadsheet (.xlsx, .xlsm, .xlsb, .xls, .ods)
cli-arg-config = TOML configuration file (see config.example.toml)
cli-arg-max-rows = Refuse lists with more data rows than this [config: limits.max_rows, default 10000]
cli-arg-sheet = Spreadsheets: the sheet to read [config: input.sheet, default: the sheet the workbook opens on, else the first visible one]
cli-arg-delimiter = Text files: the field delimiter: , ; tab | [config: input.delimiter, default: detected from the header]
cli-arg-template = Render each row's message from this template file (Jinja syntax, columns as variables) [config: message.template]
cli-arg-allow-duplicates = Send every copy of a repeated telephone + message, instead of marking later copies `duplicate` [config: input.allow_duplicates]
cli-arg-suppress = Opt-out list: numbers in it are never sent anything (repeatable; adds to campaign.suppress)
cli-arg-hsm = Send the approved HSM template TEMPLATE_NAME (api=send_template_official) instead of a free message; a `template_name` column overrides it per row [config: hsm.template_name]
cli-arg-hsm-vars = Columns whose values, in this order, fill the template's variables (joined with `;`), e.g. nombre,fecha,hora [config: hsm.vars]
cli-arg-results = Results CSV [default: <INPUT stem>.results.csv beside INPUT]
cli-arg-dry-run = Validate and record what would be sent, without sending anything or needing a token
cli-arg-resume = Continue an earlier run recorded in the results file: rows already done are skipped
cli-arg-retry-failed = With --resume: send again the rows recorded `failed`
cli-arg-retry-unknown = With --resume: send again the rows recorded `unknown` (they may already have been delivered)
cli-arg-base-url = Replace the origin https://wv{"{"}server{"}"}.wolkvox.com (a proxy or a local test server)
cli-arg-rate = At most N requests per second per token [config: limits.requests_per_second, default 10]
cli-arg-no-quota-check = Do not ask Wolkvox (token_info, one call per token) how much of today's quota is left before sending
cli-arg-partial = When today's quota cannot cover the list: send what fits and record the rest `not_sent` (continue tomorrow with --resume)
cli-arg-summary-json = Also write the end-of-run summary as JSON to FILE (counts per status, elapsed, rate, exit code), for monitoring
cli-arg-quiet = No progress bar and only warnings in the log; the summary is still printed
cli-arg-log-format = Log line format on stderr
cli-arg-wait-for-window = Outside the contact hours (campaign.hours), wait for them to open instead of stopping
cli-arg-test-to = Send only the first valid row's message, as the campaign would, to PHONE instead of the list; print Wolkvox's answer and record nothing
cli-arg-preview = With --dry-run: show the first N valid rows exactly as they would be sent (0: none)
cli-arg-limit = Send at most N rows in this run (a pilot batch), then stop (exit 3); the rest are recorded `not_sent` and sent by --resume
cli-arg-no-xlsx = Do not write the Excel workbook <results stem>.xlsx beside the results [config: results.xlsx = false]
cli-arg-no-template-check = Do not check the HSM templates against the account (list_templates, one call per connector) before sending
cli-arg-max-failures = Stop the run when N rows in a row are refused with the same answer (a wrong connector, template or closed windows); 0 never stops [config: campaign.max_failures, default 20]
cli-validate-base-url = Replace the origin https://wv{"{"}server{"}"}.wolkvox.com for the template check (a proxy or a local test server)
cli-validate-no-template-check = Do not check the HSM templates against the account, even when WOLKVOX_TOKEN is set
cli-validate-preview = Show the first N valid rows exactly as they would be sent (0: none)
cli-report-results = A results file written by `send` (or `send --dry-run`)
cli-report-format = Output format: text for people, json for scripts
cli-report-rows-to-fix = Write the list's rows that are invalid, failed or not_sent to FILE, with all their columns, to correct and send as a new list (.xlsx for a workbook, otherwise the list's own delimiter and encoding)
cli-report-xlsx = Also write the Excel workbook of these results to FILE (the list must still be where the run read it, or beside the results)
cli-reconcile-results = A results file written by `send` (its journal must be beside it)
cli-reconcile-dry-run = Print what would change, without changing the results file
cli-reconcile-settle-after = A row absent from the report counts as not sent only when the report reaches this long after its attempt (messages may show up late)
cli-reconcile-config = TOML configuration file: api.server (or api.base_url), campaign.timezone, phone.default_country

## clap's own words; used in Spanish only (English keeps clap's).
cli-default = {" "}[default: { $value }]
cli-possible-values = {" "}[possible values: { $values }]
cli-heading-arguments = Arguments
cli-heading-options = Options
cli-heading-commands = Commands
cli-command-value-name = COMMAND
cli-help-flag = Print help
cli-version-flag = Print version
cli-usage-heading = Usage:
cli-help-template =
    {"{"}about-with-newline{"}"}
    Usage: {"{"}usage{"}"}

    {"{"}all-args{"}"}{"{"}after-help{"}"}
cli-error-unknown-argument = unexpected argument '{ $arg }' found
cli-error-unknown-command = unrecognized subcommand '{ $command }'
cli-error-invalid-value = invalid value '{ $value }' for '{ $arg }'
cli-error-missing = the following required arguments were not provided: { $arg }
cli-error-conflict = the argument '{ $arg }' cannot be used with '{ $other }'
cli-error-missing-command = a command is required
cli-error-other = the arguments could not be read
cli-error-valid-values = [possible values: { $values }]
cli-error-suggestion = tip: a similar argument exists: '{ $suggestion }'
cli-error-suggestion-command = tip: a similar command exists: '{ $suggestion }'
cli-error-more = For more information, try '--help'.

## Contact hours and dates.
window-never-opens = the contact window does not open in the coming years (campaign.hours and campaign.holidays leave no time): nothing would be sent
window-open-until = open now until { $until }
window-open-no-close = open now, with no closing time ahead
window-closed-next = closed now; next opens { $opens } until { $until }
window-closed-next-no-close = closed now; next opens { $opens } with no closing time ahead
window-sending-time-left = {" "}({ $time } of sending time)
window-fits = the run fits
window-does-not-fit = the run does NOT fit: about { $percent }% of it would be sent before the window closes; the rest would be recorded not_sent (continue with --resume in the next window, or use --wait-for-window)
window-describe = { $when }{ $left }; sending needs at least { $needed }: { $verdict }
weekday-monday = Mon
weekday-tuesday = Tue
weekday-wednesday = Wed
weekday-thursday = Thu
weekday-friday = Fri
weekday-saturday = Sat
weekday-sunday = Sun

## What validate and send print about a list.
list-opt-out-lists = opt-out lists: { $numbers } numbers from { $files ->
        [one] 1 file
       *[other] { $files } files
    }
list-opt-out-ignored = , { $entries } entries ignored because they are not telephone numbers (see the warnings)
list-finish-later-windows = , going on in the later contact windows (with --wait-for-window, or --resume in each)
list-finish-around = at { $rate } requests/s per token with { $tokens ->
        [one] 1 token
       *[other] { $tokens } tokens
    }, it would finish around { $finish }{ $later }
list-previews-heading = { $rows ->
        [one] the first valid row, exactly as it would be sent:
       *[other] the first { $rows } valid rows, exactly as they would be sent:
    }
validate-problem = row { $row }, column { $column }: { $reason }
validate-duplicate = row { $row }: duplicate of row { $of_row } (same telephone and message); it would not be sent
validate-suppressed = row { $row }: { $telephone } is on the opt-out list { $list }; it would not be sent (suppressed)
validate-totals = { $invalid } of { $rows } rows invalid, { $duplicate } duplicate, { $suppressed } suppressed, { $valid } valid ({ $list })
validate-estimate = estimate: { $line }
validate-contact-hours = contact hours: { $line } (at { $rate } requests/s per token with { $tokens ->
        [one] 1 token
       *[other] { $tokens } tokens
    })

## A row's problems (also recorded, in English, in the results file).
row-connector-empty = is empty and api.connector_id is not set in the config
row-too-long = is longer than { $kib } KiB, so it was not read whole: a message is at most { $max } characters; check this row (a quote left open swallows the rows after it)
row-field-count = has { $fields } fields but the header has { $width }: is there an unquoted delimiter in a message? put such fields in double quotes
row-template-name-empty = is empty and no template is given with --hsm or hsm.template_name
row-template-variable-of = template variable { $index } of { $count }: { $reason }
row-variable = variable { $index }: { $reason }
row-variable-empty = is empty: every template variable needs a value, and WhatsApp refuses a template with an empty one
row-variable-separator = { $value } contains `;`, which separates the variables in template_vars: it would shift every variable after it; replace the `;` (e.g. with `,`)
row-variable-line-break = { $value } contains a line break or tab, which WhatsApp refuses in a template variable; put it on one line
row-url-invalid = { $url } is not a URL ({ $error }); write it like https://example.com/image.jpg
row-url-not-https = { $url } must start with https:// (WhatsApp fetches the media from a public https URL)
row-url-no-host = { $url } has no host
row-message-blank = is blank: there is nothing to send
row-message-too-long = has { $chars } characters; WhatsApp allows at most { $max }

## Which column is used for what.
columns-summary = columns: { $parts }
columns-per-row = {" "}(per row: { $column })
columns-hsm-named = message <- HSM template { $name }{ $per_row }
columns-hsm = message <- HSM template{ $per_row }
columns-template = message <- template ({ $origin }) using { $used }
columns-no-column = no column
columns-connector-default = connector_id <- { $column } (empty cells: api.connector_id { $default })
columns-in-all = … { $count } columns in all
columns-template-name-ignored = { $path }: the `{ $column }` column is ignored: sending the `{ $message }` column as free messages; to send templates, pass --hsm TEMPLATE_NAME (the column then overrides it per row)

## The header of a list.
header-missing = { $path }: no `{ $column }` column (the header has: { $header }); rename the column or set { $key } in the config
header-ambiguous = { $path }: two columns can be the { $role } column: { $first } (column { $first_index }) and { $second } (column { $second_index }); rename or remove one, or name the one to use with { $key } in the config
header-no-connector = { $path }: no connector_id: add a `{ $column }` column or set api.connector_id in the config
header-repeated = { $path }: column `{ $column }` appears twice in the header (columns { $first } and { $second }); keep one
header-no-message = { $path }: no `{ $column }` column (the header has: { $header }); rename the column or set columns.message in the config, or render each message from a template with --template FILE, or pass --hsm TEMPLATE_NAME to send an HSM template, which needs no message column
header-missing-var = { $path }: no `{ $column }` column for template variable { $index } of { $setting } (the header has: { $header }); add the column or fix { $setting }
header-no-template-name = { $path }: { $setting } names the template's variables but no template is given: pass --hsm TEMPLATE_NAME, set hsm.template_name in the config, or add a `{ $column }` column
header-template-and-hsm = { $path }: --template (message.template) renders free-form messages, --hsm (hsm.*) sends HSM templates: give one or the other

row-template-uses-empty = is empty, and the message template uses it ({ $variable })
row-template-render = cannot be rendered for this row: { $error }
template-line = {" "}(line { $line })
template-syntax = { $origin }: not a valid template: { $detail }
template-missing-column = { $origin }: the template uses `{ $variable }`, but { $path } has no such column; the columns it can use are: { $available }
template-ambiguous = { $origin }: the template variable `{ $variable }` matches two columns of { $path }, { $first } and { $second }: rename one
connector-too-long = is not a connector id: longer than { $max } characters
connector-bad-character = { $id } is not a connector id: it has { $bad }; use only letters, digits, - and _ (the id Wolkvox shows for the WhatsApp connector)

## Telephone numbers.
phone-empty = is empty
phone-too-long = { $shown } is { $chars } characters long: too long to be a telephone number
phone-scientific = { $shown } is in scientific notation: Excel turned the number into a float and lost digits; give the .xlsx directly (it is read as typed), or format the column as Text in the spreadsheet and export again
phone-bad-characters = { $shown } is not a telephone number: only digits, +, spaces, dashes, dots and parentheses are allowed
phone-too-few = { $shown } has { $digits } digits: too few for a telephone number
phone-too-many = { $shown } has { $digits } digits: more than the { $max } an international number can have
phone-not-national-nor-international = { $shown } is not a valid number, neither as a national number of { $country } (phone.default_country) nor with a country code
phone-not-international = { $shown } is not a valid number with a country code: write it with the country code (e.g. +57 300 123 4567), or set phone.default_country (e.g. "CO") for national numbers
phone-invalid = { $shown } is not a valid telephone number
phone-invalid-in = { $shown } is not a valid number in { $country }
phone-invalid-in-hint = { $shown } is not a valid number in { $country }; if it is a national number (without country code), set phone.default_country (e.g. "CO")
phone-invalid-unknown-country = { $shown } is not a valid telephone number (unknown country code)
phone-invalid-unknown-country-hint = { $shown } is not a valid telephone number (unknown country code); if it is a national number (without country code), set phone.default_country (e.g. "CO")
phone-kind-in = { $shown } is a { $kind } number in { $country }: it cannot receive WhatsApp messages; give a mobile number
phone-kind-in-hint = { $shown } is a { $kind } number in { $country }: it cannot receive WhatsApp messages; give a mobile number; if it is a national number (without country code), set phone.default_country (e.g. "CO")
phone-kind = { $shown } is a { $kind } number: it cannot receive WhatsApp messages; give a mobile number
phone-kind-hint = { $shown } is a { $kind } number: it cannot receive WhatsApp messages; give a mobile number; if it is a national number (without country code), set phone.default_country (e.g. "CO")
phone-kind-fixed-line = fixed-line
phone-kind-toll-free = toll-free
phone-kind-premium-rate = premium-rate
phone-kind-shared-cost = shared-cost
phone-kind-pager = pager
phone-kind-uan = company (UAN)
phone-kind-emergency = emergency
phone-kind-voicemail = voicemail
phone-kind-short-code = short-code
phone-kind-standard-rate = standard-rate service
phone-kind-carrier = carrier-specific
phone-kind-domestic = domestic-only service
phone-kind-service = service

## Reading a list.
input-open = cannot open { $path }: { $error }
input-empty = { $path } is empty: expected a header row (e.g. telephone,message) followed by the contacts
input-no-rows = { $path }: has a header but no data rows: nothing to send
input-parse = { $path }, line { $line }: { $message }
input-too-many-rows = { $path }: more than { $max_rows } data rows: split the list, or raise the limit with --max-rows or limits.max_rows
input-spreadsheet = cannot read { $path } as a spreadsheet: { $message }; if it is really a CSV file, give it a .csv name
input-no-such-sheet = { $path }: no sheet named { $wanted } (--sheet or input.sheet); its sheets are: { $sheets }
input-header-too-long = the header line is longer than { $kib } KiB: this is not a contact list's header (check the file, or its delimiter)
input-sheet-ignored = { $path }: is read as delimited text (not a spreadsheet by its extension); the sheet { $sheet } is ignored
input-place-header = header column { $column }
input-place-row = row { $row }, column { $column }
input-encoding-undecided = not yet known (ASCII so far)
input-not-utf8-while = not UTF-8, while { $place } is: the file mixes encodings (some fields are UTF-8, others are not), so some accents would be sent garbled; export it again as "CSV UTF-8" and check the accents of that row
input-part-utf8 = part UTF-8 and part not: the file mixes encodings (some fields are UTF-8, others are not), so some accents would be sent garbled; export it again as "CSV UTF-8" and check the accents of that row
input-reading-windows-1252 = the list is not UTF-8: reading it as Windows-1252 (set input.encoding to choose)
input-not-utf8-config = not valid UTF-8, as input.encoding = "utf-8" requires: save the file as UTF-8 (Excel: "CSV UTF-8"), or set input.encoding = "windows-1252" or "auto"
input-not-utf8-bom = not valid UTF-8, although the file starts with a UTF-8 byte order mark: the file mixes encodings; export it again as "CSV UTF-8"
input-an-earlier-field = an earlier field
input-format-text = delimited text, delimiter { $delimiter }, encoding { $encoding }
input-format-sheet = spreadsheet, sheet { $sheet }
input-read-error = read error: { $error }
input-not-utf8 = not valid UTF-8: save the file as UTF-8 (Excel: "CSV UTF-8")
input-not-csv = not a readable CSV table ({ $error })

## Opt-out lists.
suppress-read = cannot read opt-out list { $path }: { $error }; fix the path given with --suppress or campaign.suppress (nothing was sent)
suppress-input = opt-out list: { $error } (nothing was sent)
suppress-no-numbers = opt-out list { $path }: none of its { $entries } entries is a telephone number (line { $line }: { $reason }); is it the right file? Numbers go one per line, or in the first column or a column named telephone, phone, telefono or celular (nothing was sent)
suppress-entry-ignored = opt-out list { $path }, line { $line }: telephone { $reason }; this entry is ignored, the rest of the list applies
suppress-more-ignored = opt-out list { $path }: { $count } more entries are not telephone numbers and are ignored

## Operating-system errors (English keeps the system's own words).
io-not-found = No such file or directory
io-permission-denied = Permission denied
io-already-exists = File exists
io-storage-full = No space left on device
io-is-a-directory = Is a directory
io-not-a-directory = Not a directory
io-read-only = Read-only file system
io-timed-out = Timed out
io-connection-refused = Connection refused

## The end-of-run summary.
summary-rows = rows
summary-skipped = skipped
summary-skipped-why = (already done in an earlier run)
summary-this-run = this run
summary-this-run-counts = sent { $sent }, failed { $failed }  (the counts above are the whole campaign's)
summary-elapsed = elapsed
summary-rate = ({ $rate } messages/s)
summary-estimate = estimate
summary-hours = hours
summary-results = results
summary-stopped = stopped early: { $why }
preview-row = row { $row } -> { $telephone }:
preview-template = row { $row } -> { $telephone }: template { $name }, vars { $vars }

## send.
send-start = wolkvox-dispatch { $version }: { $what } { $list } -> { $results } ({ $rows } rows; { $settings })
send-start-dry-run = dry run of
send-start-sending = sending
send-title-dry-run = dry run: nothing was sent
send-title-stopped = run stopped
send-title-finished = run finished
send-sending = sending { $rows } rows through { $tokens ->
        [one] 1 token
       *[other] { $tokens } tokens
    }
send-contact-hours = contact hours: { $line }
send-stop-results-unfinished = cannot finish the results file ({ $error })
send-stop-quota = today's quota was not enough for { $rows } rows, recorded not_sent (--partial); the quota renews tomorrow
send-stop-pilot = the pilot batch is sent (--limit { $limit }); the other { $rows } rows are recorded not_sent: check the pilot's results, then send the rest
send-stop-disk = The counts above are every outcome received; those that could not be written are `unknown` to the journal, so no row is sent twice. Free some disk space before resuming.
send-to-continue = To continue, run: { $command }
send-skipped = { $rows } rows were already done in an earlier run and are skipped
send-settings-tokens = { $tokens ->
        [one] 1 token
       *[other] { $tokens } tokens
    }
send-settings-rate = { $rate } requests/s and { $in_flight } at once per token
send-settings-connector = connector { $connector }
send-settings-hours = contact hours set
send-estimate = { $messages ->
        [one] 1 message
       *[other] { $messages } messages
    } would take at least { $time } at { $rate } requests/s per token with { $tokens ->
        [one] 1 token
       *[other] { $tokens } tokens
    } (each token also carries at most { $in_flight } requests at once, so a slow server lowers this){ $finish }
send-workbook = workbook: { $path }
send-workbook-failed = the results are in the CSV, but { $error }
send-summary-failed = cannot write the summary to { $path }: { $error }
send-no-signals = cannot listen for Ctrl-C/SIGTERM: { $error }
send-interrupted = interrupted: no new requests; waiting for those in flight (press Ctrl-C again to exit at once)
send-interrupted-again = interrupted again: exiting now. Every outcome received so far is in { $results }; the rows that were in flight will be `unknown` (they may have been delivered).
workbook-started = Started
workbook-finished = Finished
workbook-dry-run = Dry run
workbook-nothing-sent = nothing was sent
workbook-to-continue = To continue

## The Excel workbook.
workbook-list = List
workbook-results = Results
workbook-campaign = Campaign
workbook-first-answer = First answer
workbook-last-answer = Last answer
workbook-reconciled = Reconciled
workbook-list-changed = { $list } has changed since the run read it ({ $then } bytes then, { $now } now): rows are matched by number, so check them
workbook-no-list = cannot find the contact list of { $results }: it is neither where the run read it nor beside the results; put it back, or name it like the results (list.csv for list.results.csv)
workbook-write = cannot write the workbook { $path }: { $message }
workbook-column-result = Result
workbook-column-reason = Reason
workbook-column-code = Code
workbook-column-attempts = Attempts
workbook-column-time = Time
workbook-column-sheet-row = Sheet row
workbook-sheet-rows = Rows
workbook-sheet-summary = Summary
workbook-no-result = No result recorded
workbook-what-to-do = {" "}(what to do: { $fix })

## Statuses: the results file keeps the codes (sent, not_sent...); people read these.
status-help-heading = Statuses of the results file (column `status`):
status-meaning-sent = Wolkvox accepted the message (HTTP 2xx and body `code` 2xx). Not proof of delivery.
status-meaning-failed = Wolkvox refused the message, or every attempt failed in a way that certainly did not deliver it.
status-meaning-unknown = The request was written but the answer never came (timeout, connection dropped): the message may have been delivered. Not sent again unless `--resume --retry-unknown`.
status-meaning-invalid = The row failed validation; `msg` says which column and why.
status-meaning-duplicate = Same number and message as an earlier row; not sent.
status-meaning-suppressed = The number is on an opt-out list (`--suppress`, `campaign.suppress`); never sent, not even by `--resume --retry-failed`.
status-meaning-not-sent = Never attempted because the run stopped early (exit code 3).
status-meaning-dry-run = Valid row that would have been sent (`--dry-run` only).
status-label-sent = Sent
status-label-failed = Failed: refused
status-label-unknown = Unknown: may have been delivered
status-label-invalid = Invalid: not sent
status-label-duplicate = Duplicate: not sent
status-label-suppressed = Opted out: not sent
status-label-not-sent = Not sent yet
status-label-dry-run = Would be sent (dry run)
status-word-sent = sent
status-word-failed = failed
status-word-unknown = unknown
status-word-invalid = invalid
status-word-duplicate = duplicate
status-word-suppressed = suppressed
status-word-not-sent = not_sent
status-word-dry-run = dry_run

## Why a run stopped.
stop-interrupted = interrupted (Ctrl-C or SIGTERM)
stop-quota-spent = every token has spent today's quota (licences x 1000 calls a day); it renews tomorrow
stop-tokens-refused = every token in WOLKVOX_TOKEN was refused by Wolkvox (invalid, expired or quota spent); check the tokens
stop-api-not-found = Wolkvox answered { $msg }: check api.server / --base-url
stop-redirected = the server answered HTTP { $status } ({ $msg }) instead of the API: the base URL or the server id is wrong; check api.server / api.base_url / --base-url
stop-service-down = every token failed { $failures } times in a row: the service looks down
stop-record-failed = cannot record outcomes ({ $message })
stop-window-closed = outside the contact hours (campaign.hours): the window opens again { $opens }; run the command below then, or add --wait-for-window to wait for it
stop-window-never = outside the contact hours, and campaign.hours with campaign.holidays leave no time to send in the coming years: check them
stop-same-refusal = { $rows } rows in a row were refused with the same answer ({ $answer }): the campaign itself looks wrong, so the rest was not sent; { $fix }; the refused rows stay `failed` (send them again after the fix with --resume --retry-failed); --max-failures / campaign.max_failures sets how many refusals stop a run (0: never)
stop-same-refusal-fix = look at the answer above: a wrong connector id, a template or a parameter the API refuses are the usual causes

## While sending.
dispatch-stopping = stopping: { $reason }
dispatch-waiting-window = outside the contact hours: waiting until { $when } (Ctrl-C stops; --resume continues later)
dispatch-window-open = the contact window is open: sending
dispatch-retry-after-capped = the server asked to wait { $asked } (Retry-After) before trying again; waiting { $most } at most
dispatch-timeout = row { $row }: no answer within { $timeout }: it may have been delivered; recorded unknown
dispatch-maybe-delivered = row { $row }: { $error } ({ $msg }): it may have been delivered; recorded unknown
dispatch-token-retired = { $token } refused ({ $why }): not used for the rest of this run
dispatch-abandoned = row { $row }: still no answer { $limit } after it was sent; the request is abandoned
dispatch-late-answer = row { $row }: the answer came after the timeout: { $status }
progress-sending = sending
progress-waiting-window = waiting for contact hours ({ $when })

## The progress bar and, without a terminal, the progress lines.
progress-tally = sent { $sent }, failed { $failed }
progress-left = , about { $time } left
progress-line = progress: { $done }/{ $total } rows, { $tally }{ $eta }
progress-bar-eta = {"{"}msg{"}"} [{"{"}bar:30{"}"}] {"{"}pos{"}"}/{"{"}len{"}"} rows  {"{"}prefix{"}"}  {"{"}rate{"}"}  ETA {"{"}eta{"}"}
progress-bar = {"{"}msg{"}"} [{"{"}bar:30{"}"}] {"{"}pos{"}"}/{"{"}len{"}"} rows  {"{"}prefix{"}"}

## What to do about a refusal.
fix-24-hour-window = the 24-hour window is closed: send these people the HSM template first (send --hsm TEMPLATE); a free message reaches them only after they answer it
fix-parameter-missing = a parameter is missing: check the list's columns and api.connector_id in the config, then send these rows as a new list
fix-connector = check the connector: api.connector_id in the config, or the connector_id column
api-bad-retry-after = the server sent Retry-After { $value }, which is neither whole seconds nor an HTTP date: ignored, waiting the usual backoff instead
api-client = cannot set up the HTTP client: { $error }

## Tokens and today's quota.
token-none = no token: set the { $variable } environment variable (several tokens separated by commas); tokens are never accepted as flags
token-bad = token #{ $index } in { $variable } { $reason }
token-bad-characters = contains spaces, control or non-ASCII characters, which cannot go in an HTTP header
token-not-utf8 = is not valid UTF-8
token-name = token #{ $index }
quota-too-small = today's quota allows { $fits ->
        [one] 1 more request
       *[other] { $fits } more requests
    } on { $tokens ->
        [one] 1 token
       *[other] { $tokens } tokens
    }, but { $rows } rows are to be sent: nothing was sent. Send the first { $fits } today with --partial (the rest is recorded not_sent; continue tomorrow with --resume), or add tokens to WOLKVOX_TOKEN (separated by commas; each has licences x 1000 calls a day). --no-quota-check skips this check
quota-no-token = no token can send today ({ $detail }): nothing was sent
quota-check-failed = quota check failed: { $error }
quota-token-spent = { $token } has no calls left today (limit { $limit }, used { $used }): not used in this run
quota-why-spent = today's quota is spent
quota-why-invalid = invalid, expired or malformed
quota-why-missing = not received by Wolkvox
quota-token-left = { $token }: { $left } calls left today (limit { $limit }, used { $used })
quota-token-refused = { $token } refused by token_info ({ $answer }): { $why }; not used in this run
quota-unknown = cannot read today's quota of { $token } ({ $why }); sending anyway: if the quota runs out, the token is retired and the rest is recorded not_sent
quota-enough = today's quota allows { $left } more requests on { $tokens ->
        [one] 1 token
       *[other] { $tokens } tokens
    }: enough for the { $rows } rows
quota-partial = today's quota allows { $left } more requests on { $tokens ->
        [one] 1 token
       *[other] { $tokens } tokens
    }: sending the first { $fits } of { $rows } rows (--partial)

## report.
campaign-hsm-named = HSM template { $name }
campaign-hsm-column = HSM templates named by the template_name column
campaign-with-variables = { $name } with variables { $vars }
campaign-rendered = messages rendered from { $template }
campaign-rendered-unnamed = messages rendered from a template
campaign-free = free messages from the message column
report-rows-to-fix = rows to fix: { $rows } rows (invalid, failed or not_sent) written to { $path }
report-next-dry-run = this is a dry run's file: nothing was sent; this sends the { $rows } rows recorded dry_run
report-next-never-attempted = the { $rows } rows never attempted
report-next-not-sent = the { $rows } not_sent rows
report-next-failed = again the { $rows } failed rows
report-next-unknown = again the { $rows } unknown rows (they may already have been delivered: check before sending them twice)
report-next-sends = sends { $parts }
report-next-and = , and{" "}
report-heading = report of { $results } ({ $rows } rows)
report-campaign = campaign: { $campaign }
report-in-progress-of = in progress: a run is sending right now; { $rows } of { $total } rows recorded so far (run report again when it ends)
report-never-attempted = { $rows } of { $total } rows recorded; { $never } never attempted (the run was stopped before reaching them)
report-in-progress = in progress: a run is sending right now (run report again when it ends)
report-failures = failures (failed and unknown) by code and msg, most common first:
report-no-code = no code
report-code = code { $code }
report-failed-and-unknown = { $failed } failed, { $unknown } unknown
report-rows = rows { $rows }
report-not-sent = not sent
report-suppressed = suppressed
report-invalid = invalid rows: the reason of each is in the Reason column of the workbook (the msg column of the results file, for programs), or run `wolkvox-dispatch validate` on the list
report-first-answer = first answer
report-last-answer = last answer
report-rate = rate
report-rate-value = { $rate } messages/s (sent rows over that time, pauses between runs included)
report-rate-single = - (a single moment)
report-no-answer = no answer from Wolkvox was recorded
report-no-request = no request was sent to Wolkvox
report-cannot-fix = failed rows that sending again cannot fix:
report-reconcile-first = unknown rows may have been delivered: settle them with Wolkvox's report of sent messages first:
report-no-rows = no rows recorded yet
report-nothing-left = nothing left to send: every row is sent, suppressed, invalid or duplicate
report-next = next: { $command }
report-replace-placeholder = Replace { $placeholder } with the contact list this results file came from.
report-add-options = Add the --config and --suppress options of the original run: contact hours and opt-out lists are not stored in the results file (rows recorded suppressed stay suppressed).

## The configuration file and the flags.
config-read = cannot read config file { $path }: { $error }
config-parse = config file { $path }: { $message }
config-key = config file { $path }: key `{ $key }`: { $reason }
config-template-file = cannot read the template file { $path } (--template): { $error }
config-no-endpoint = no Wolkvox server configured: set `api.server` (e.g. "0042") or `api.base_url` in the config file, or pass --base-url
config-not-empty = must not be empty
config-not-a-duration = { $text } is not a duration ({ $error }); write it like "60s", "500ms" or "2m"
config-at-least-one = must be at least 1
config-connector-empty = must not be empty (remove the key to require a connector_id column)
config-template-name-empty = must not be empty: give the name of an approved template (e.g. cita_recordatorio)
config-variable-no-column = variable { $index } has no column name: list the columns in the template's order, e.g. nombre,fecha,hora
config-not-a-delimiter = { $value } is not a delimiter: { $delimiters }
config-encoding = { $value } is not supported: use "auto", "utf-8" or "windows-1252"
config-file-empty = { $file } is empty
config-country = { $value } is not a country code: use the two-letter ISO 3166 code, e.g. "CO", "MX", "ES"
config-settle-after = { $value } is not a duration: write it like "30m", "2h" or "0s"
config-timezone-required = is required with campaign.hours or campaign.holidays: write the recipients' IANA time zone, such as "America/Bogota"
config-server-id = { $value } is not a Wolkvox server id: use only letters and digits, as given by Wolkvox support (e.g. "0042" for wv0042.wolkvox.com)
config-url-credentials = must not carry a user name or password (the part before `@`): remove it; the token goes in the WOLKVOX_TOKEN environment variable
config-url-invalid = { $url } is not a URL ({ $error }); write it like https://wv0042.wolkvox.com
config-url-scheme = { $url } must start with https:// or http://
config-no-hours-to-wait = there are no contact hours to wait for: set campaign.hours (and campaign.timezone) in the config file
config-limit-zero = must be at least 1 (to send nothing, use --dry-run)
config-timeout-short = { $value } is too short: a request needs time to reach Wolkvox and come back; use at least 1s (the default is 60s, the API's own limit)
config-rate = { $value } is not a usable rate: give requests per second per token, at least one a day ({ $min })
config-in-flight = { $value } is not allowed: the Wolkvox API accepts at most { $max } simultaneous requests per token; use 1 or 2
config-max-delay = must not be shorter than retry.base_delay

## Contact hours in the config file.
hours-empty = is empty: write the hours like "mon-fri 07:00-19:00, sat 08:00-15:00", or remove the key to send at any hour
hours-empty-entry = { $spec } has an empty entry between commas; entries look like "mon-fri 07:00-19:00"
hours-needs-days = entry { $entry } needs days and hours, like "mon-fri 07:00-19:00"
hours-not-a-day = entry { $entry }: { $name } is not a day; use { $days }
hours-backwards = entry { $entry }: day range { $text } goes backwards; ranges run from mon to sun (write e.g. "sat-sun" and "mon" as separate entries)
hours-not-a-range = entry { $entry }: { $text } is not a time range; write it like 07:00-19:00
hours-starts-at-24 = entry { $entry }: a range cannot start at 24:00; use 00:00 of the next day
hours-crosses-midnight = entry { $entry }: { $text } crosses midnight, which is not supported; split it at midnight, like "fri 22:00-24:00, sat 00:00-02:00"
hours-empty-range = entry { $entry }: { $text } is empty (it ends when it starts)
hours-not-a-time = entry { $entry }: { $text } is not a time; write HH:MM (00:00 to 24:00) or HH:MM:SS
hours-no-day = opens on no day
timezone-empty = is empty: write an IANA time zone name such as "America/Bogota"
timezone-unknown = { $name } is not a known IANA time zone; write a name such as "America/Bogota", "America/Mexico_City" or "Europe/Madrid"
holiday-not-a-date = { $text } is not a date; write it as YYYY-MM-DD, like "2026-12-08"
config-delimiters = use ",", ";", "tab" or "|"

## The results file and its journal.
results-already-exists = { $path } already exists: this list was already sent (or partly sent). To continue that run, add --resume; to send it again from scratch, move the results file and its .journal away first
results-not-a-dry-run = { $path } is the results file of a real run, not a dry run's: choose another file with --results
results-locked = another wolkvox-dispatch run is using { $path } right now; wait for it to finish (two runs on one results file could send messages twice)
results-no-journal = { $results } exists but its journal { $journal } is missing, so it cannot be told which rows were already attempted; restore the journal, or send the remaining rows as a new list
results-bad-journal = { $path }, line { $line }: the journal is damaged ({ $message }); it cannot be resumed safely
results-read = cannot read { $path }: { $message }
results-disagree = { $journal } looks damaged (emptied, cut short, zero-filled, or another list's): it does not record row { $row } ({ $telephone }) as { $status }, as { $results } does, so resuming could send messages twice. Nothing was sent. Restore the journal from a backup; or send only the rows that { $results } does not record as sent, unknown or failed, as a new list with its own --results
results-other-list = { $path } is the results file of another list, { $list }: choose another file for this one with --results (for example { $suggestion })
results-symlink = { $path } is a symbolic link: the results file and its journal must be regular files (a link could make this run write somewhere else); give --results a plain path
results-is-the-input = { $path } is the input list itself: writing results there would destroy it; choose another file with --results
results-write = cannot write { $path }: { $error }
results-unreadable-journal-alone = { $error }; going by the journal alone
campaign-differs-kind = the recorded run sends { $recorded }; this command sends { $this }
campaign-differs-connector = the recorded run's api.connector_id is { $recorded }; this command's is { $this }
campaign-differs-list = the results belong to another list, { $recorded }; this command reads { $this }
campaign-not-set = not set
plan-suppressed-after-sent = row { $row }: { $telephone } is on the opt-out list { $list }, but an earlier run already recorded this message { $status }; it is not sent again
error-runtime = cannot start the async runtime: { $error }
error-other-campaign = { $results } records another campaign: { $differences }. Nothing was sent. To continue the recorded run, run: { $command }
    To send this one instead, give it its own results file with --results

## reconcile.
reconcile-refused = Wolkvox refused the report call (HTTP { $status } { $msg }): check the token (it needs access to reports) and today's quota; nothing was changed
reconcile-unreadable = cannot read Wolkvox's report ({ $why }); nothing was changed
answer-not-json = the answer (HTTP { $status }) is not JSON: { $excerpt }
reconcile-no-messages = the answer lists no messages with a telephone and a message
reconcile-undecided-template = an HSM template (or a journal too old to say): Wolkvox's report is not known to list a template's text, so it cannot confirm it
reconcile-undecided-cut = the report reached its limit of 60,000 records, so a message missing from it may only have been cut off
reconcile-nothing = { $results }: no unknown rows: nothing to reconcile
reconcile-totals = { $rows } unknown rows: { $sent } confirmed sent, { $not_sent } not sent, { $left } still unknown
reconcile-dry-run = dry run: the results file was not changed
reconcile-next-sends = sends the { $rows } not_sent rows, once each.
reconcile-row-sent = sent: listed in Wolkvox's report, recorded { $date }
reconcile-row-not-sent = not_sent: absent from Wolkvox's report
reconcile-row-too-recent = still unknown: too recent for its absence to count; reconcile again after { $after }
reconcile-row-undecided = still unknown: { $why }
reconcile-row = row { $row }  { $telephone }  { $line }
reconcile-waiting = waiting until { $until } for the next { $api } call: Wolkvox asks for at most one every 5 minutes
reconcile-asking = asking Wolkvox's report of sent messages ({ $api }) for { $from }..{ $to }
reconcile-workbook = workbook rewritten: { $path }
reconcile-workbook-failed = the results are settled, but the workbook was not rewritten: { $error }

## The HSM template check.
templates-mismatch = the HSM templates of this list do not match the account, so nothing was sent:
    { $problems }
    Fix the template names, variables (--hsm-vars / hsm.vars) or url_attach column, or run with --no-template-check to send anyway
templates-unchecked = cannot check the HSM templates of connector { $connector }: { $why }; sending without the check
templates-what = template { $name } (connector { $connector }, { $rows } rows)
templates-not-found = { $what }: not found among the connector's templates; approved ones: { $approved }
templates-not-approved = { $what }: its status is { $status }, not APPROVED: Meta only delivers approved templates
templates-variables = { $what }: it takes { $takes } variables ({ $placeholders }) but rows { $rows } give { $count }
templates-media = { $what }: it has a { $media } header, so every row needs a url_attach (a public https URL of the file), but rows { $rows } have none
templates-answered = Wolkvox answered HTTP { $status } { $msg }
templates-no-list = the answer has no list of templates (no `meta_templates`)

templates-none = none
templates-and-more = {" "}and { $more } more
templates-uses = { $templates ->
        [one] 1 template
       *[other] { $templates } templates
    } on { $connectors ->
        [one] 1 connector
       *[other] { $connectors } connectors
    }
preflight-checking = checking { $uses } against the account (list_templates)
preflight-no-token = WOLKVOX_TOKEN is not set; set it to check the templates against the account
preflight-no-server = no api.server (or --base-url) says where the account is
preflight-skipped = template check: skipped: { $why }
preflight-passed = template check: { $uses } checked against the account, { $confirmed } confirmed

## send --test-to.
test-send-opted-out = { $to } is on the opt-out list { $list }: choose a number that accepts messages
test-send-no-valid-row = the list has no valid row to send as a test; run `wolkvox-dispatch validate` on it
test-send-heading = test send: row { $row }'s message (to { $list_phone } in the list), sent to { $to } instead:
test-send-answer = Wolkvox's answer: { $verdict }: { $answer }
test-send-nothing-recorded = nothing was recorded: the campaign's results file and journal are untouched
test-send-accepted = accepted
test-send-refused = refused
test-send-unclear = unclear (it may have been delivered)
test-send-not-taken = not taken (check the token and the address; try again)
test-send-no-answer = no answer within the timeout (it may have been delivered)

config-url-query = { $url } must not have a query or fragment: the tool appends /api/v2/whatsapp.php?api=... itself

## Log levels (Spanish only: English keeps tracing's own).
log-level-error = ERROR
log-level-warn = WARN
log-level-info = INFO
log-level-debug = DEBUG
log-level-trace = TRACE

## What the results file records in a row's msg. Always written in English (programs
## read it); people see it in their language in `report` and the workbook, matched
## back from these patterns. A pattern must start or end with text, not only a
## placeable; the most general ones come last.
msg-interrupted = not sent: the run was interrupted
msg-quota-spent = not sent: every token has spent today's quota; it renews tomorrow (continue with --resume)
msg-tokens-refused = not sent: every token was refused
msg-api-not-found = not sent: the API does not exist at the configured URL
msg-redirected = not sent: the server redirected the request (wrong base URL or api.server)
msg-service-down = not sent: the service looked down
msg-record-failed = not sent: the results could not be written
msg-window-closed = not sent: outside the contact hours; the window opens again { $opens }
msg-window-never = not sent: outside the contact hours, which do not open again in the coming years
msg-same-refusal = not sent: the run stopped after { $rows } rows in a row were refused with the same answer (--max-failures)
msg-pilot = not sent: this run sent a pilot batch of { $limit } rows (--limit); the rest is sent by --resume
msg-partial = not sent: today's quota was not enough for this row (--partial); it renews tomorrow (continue with --resume)
msg-templates-refused = the HSM templates do not match the account (see the run's error); nothing was sent
msg-duplicate = same telephone and message as row { $row }
msg-interrupted-then-opted-out = an earlier run was stopped while sending this message (then row { $row }): it may have been delivered; the number is now on the opt-out list { $list }, so it is never sent again
msg-opted-out = on the opt-out list { $list }: never sent
msg-retry-unknown-sends = { $stopped }; --resume --retry-unknown sends it again
msg-interrupted-earlier = an earlier run was stopped while sending this message (then row { $row }): it may have been delivered
msg-in-flight-journal = the run stopped while this request was in flight (journal): it may have been delivered
msg-in-flight-reconcile = the run stopped while this request was in flight: it may have been delivered; reconcile again later
msg-confirmed-sent = confirmed sent by Wolkvox's report ({ $api }): recorded { $date }; checked { $checked }
msg-absent-from-report = not sent: absent from Wolkvox's report of sent messages ({ $api }) up to { $until }, checked { $checked } (settled after { $after }); --resume sends it once
msg-no-answer-within = no answer within { $timeout } (api.timeout)
msg-gave-up = { $msg } (gave up after { $attempts } attempts)
msg-answered-late = { $msg } (answered after the timeout)
msg-not-sent-because = not sent: { $why }

cli-options-placeholder = [OPTIONS]

cli-help-command = Print this message or the help of the given subcommand(s)

api-answer-not-json = the answer is not JSON
api-no-token-limit = the answer has no token_limit and token_use_today (as whole numbers)
api-token-not-a-header = the token cannot be sent as an HTTP header

config-toml-at = TOML parse error at line { $line }, column { $column }
config-toml-or = {" "}or{" "}
config-toml-unknown-key = unknown field { $key }, expected one of { $expected }
config-toml-unknown-value = unknown variant { $value }, expected { $expected }
config-toml-invalid-type = invalid type: { $found }, expected { $expected }
config-toml-missing-key = missing field { $key }

# issue 30
cli-init-about = Write a first, commented config file (wolkvox.toml) in your language, asking for the server, the WhatsApp connector and the country
cli-init-file = The config file to write; an existing file is never overwritten
cli-init-server = Your Wolkvox server id: the digits of your address https://wv0042.wolkvox.com (here 0042)
cli-init-connector-id = The id of the WhatsApp connector of the line that sends (in wolkvox Manager, among the operation's connectors)
cli-init-country = The country of numbers written without a country code: a two-letter ISO code such as CO, MX, EC
init-ask-server =
    Your Wolkvox server: the digits in the address you open Wolkvox at, https://wv0042.wolkvox.com (here 0042). Wolkvox support gives it.
    Server (empty: fill it in later)
init-ask-connector =
    The WhatsApp connector id: the number of the WhatsApp connector of the line that sends, as listed among the operation's connectors in wolkvox Manager (the API information.php?api=connectors lists it too, channel "whatsapp"). Ask your Wolkvox administrator if you do not see it.
    Connector id (empty: the list has a connector_id column)
init-ask-country =
    The country of numbers written without a country code (300 123 4567 is a Colombian mobile with CO): a two-letter ISO code such as CO, MX, EC, PE.
    Country (empty: every number carries its country code)
init-exists = { $file } already exists and is left as it is: edit it, or give another name (wolkvox-dispatch init other.toml)
init-write = cannot write { $file }: { $error }
init-bad-flag = { $flag }: { $reason }
init-bad-answer = the answer for { $key } cannot be used: { $reason }. Give it with { $flag }, or leave the answer empty to fill it in later
init-written = Wrote { $file }.
init-fill-in = Left for later, commented out in it: { $missing } (a real send needs api.server).
init-next =
    Next, check a list with it (nothing is sent):
      wolkvox-dispatch validate LIST.xlsx --config { $file }
      wolkvox-dispatch send LIST.xlsx --config { $file } --dry-run
init-file-header =
    wolkvox-dispatch configuration, written by `wolkvox-dispatch init`.
    Use it with: wolkvox-dispatch send LIST.xlsx --config { $file }
    Tokens never go in this file: set the WOLKVOX_TOKEN environment variable.
    Every other key, with its default, is explained in config.example.toml.
init-file-server =
    Your Wolkvox server id, given by Wolkvox support: "0042" means
    https://wv0042.wolkvox.com. Needed to send (not for validate or --dry-run).
init-file-connector =
    The WhatsApp connector id of the line that sends, used for rows without a
    connector_id column or cell. It is listed among the operation's connectors
    in wolkvox Manager (and by the API information.php?api=connectors).
init-file-country =
    The country of numbers written without a country code: with "CO",
    "300 123 4567" is sent as 573001234567.
init-file-timezone =
    The recipients' time zone: times are shown in it, and contact hours
    (hours = "mon-fri 07:00-19:00") need it. Default: the machine's.
init-file-lang =
    The language of everything written for a person: "es" or "en".
init-file-unset = Not set yet: remove the "#" and write the value.
summary-workbook = to open in Excel: { $path }
summary-for-programs = for programs (CSV): { $path }
report-workbook = to open in Excel: { $path }
report-no-workbook = no workbook beside it: `wolkvox-dispatch report { $results } --xlsx { $path }` writes it
when-this-year = { $weekday } { $day } { $month }, { $time }
when-other-year = { $weekday } { $day } { $month } { $year }, { $time }
when-monday = Monday
when-tuesday = Tuesday
when-wednesday = Wednesday
when-thursday = Thursday
when-friday = Friday
when-saturday = Saturday
when-sunday = Sunday
when-january = January
when-february = February
when-march = March
when-april = April
when-may = May
when-june = June
when-july = July
when-august = August
when-september = September
when-october = October
when-november = November
when-december = December
## Wolkvox's usual answers and the tool's own descriptions of an answer, as the results
## file records them (`msg-` patterns): shown in the reader's language by report and
## the workbook, recorded as they are.
msg-wolkvox-sent = Message has been sent successfully
msg-wolkvox-bad-request = BAD REQUEST
msg-wolkvox-forbidden = FORBIDDEN
msg-wolkvox-unauthorized = UNAUTHORIZED
msg-wolkvox-parameters = SOME PARAMETERS ARE REQUIRED
msg-wolkvox-no-api = THE API YOU WANT TO CONSULT DOES NOT EXIST
msg-wolkvox-enter-token = PLEASE ENTER THE WOLKVOX-TOKEN
msg-wolkvox-token-limit = TOKEN LIMIT EXCEEDED
msg-wolkvox-simultaneous = EXCEEDS THE LIMIT OF SIMULTANEOUS REQUESTS PER TOKEN (2)
msg-wolkvox-validate-token = PLEASE VALIDATE TOKEN
msg-answer-server-error = HTTP { $status } server error: it may have been delivered
msg-answer-not-json = response is not JSON
msg-answer-redirect = HTTP { $status } redirect
msg-answer-says-taken = HTTP { $status } with an answer that says { $code }: it may have been delivered
msg-answer-no-code = response has no usable code
msg-answer-connection-lost = connection lost while reading the answer
msg-answer-token-header = token cannot be sent as an HTTP header
list-set-default-country = { $rows } of { $seen } rows have telephones that are not valid international numbers: if the list has national numbers (300 123 4567, without a country code), set [phone] default_country = "CO" (your country) in the config file (`wolkvox-dispatch init` writes one) and check again
config-toml-quote-text = a text value goes in quotes, e.g. default_country = "CO"
config-toml-leading-zero = a number cannot start with 0: an id such as a server goes in quotes, e.g. server = "0042"
config-toml-unclosed = a [ is not closed: close the section name or list with ]
config-toml-unclosed-string = a text is not closed: end it with the same quote it starts with, on the same line
config-toml-syntax = this line is not valid TOML: check its quotes, brackets and its = sign
# issue 29
input-file-and-sheet = { $path }, sheet { $sheet }
input-other-sheets = { $path }: reading sheet { $sheet }; other sheets with data: { $others } (choose one with --sheet)
row-cell-error = the cell shows the error { $error }: correct the formula or the value in the spreadsheet
config-locale = { $value } is not a locale for numbers and dates: use "es-CO", "es-ES", "es-MX" or "en-US"
phone-two-numbers = { $shown } holds two numbers in one cell: put one number per row (copy the row for the second number)
phone-mexico-one = { $shown } is an old Mexican mobile form: drop the 1 after +52 (since 2019 a Mexican number is +52 and 10 digits, e.g. +52 55 1234 5678)
phone-mexico-prefix = { $shown } is an old Mexican mobile form: drop the { $prefix } before the 10 digits (since 2019 a Mexican number is +52 and 10 digits, e.g. +52 55 1234 5678)
cli-arg-header-row = The header's row number, as the spreadsheet shows it; the rows above it are ignored [config: columns.header_row, default: the first of the first 20 rows with the telephone column]
input-rows-above-header = { $path }: the header is row { $row }: the rows above it are ignored ({ $rows } with something in them)
input-no-header-row = { $path }: there is no row { $row } (--header-row, columns.header_row): the last row with something in it is row { $last }
report-rows-as-recorded = the contact list of { $results } was not found or could not be read whole: rows are named as the results file numbers them (1 = the first row under the header), not as the spreadsheet does
# issue 28
setting-certificate = the server's certificate is not trusted by this machine ({ $detail }). If your company inspects HTTPS with its own certificate authority, ask IT for that CA's certificate (a .pem or .crt file) and point SSL_CERT_FILE at it (or SSL_CERT_DIR at its folder), or add it to the system's certificate store; no message went out
setting-certificate-name = the certificate presented for { $origin } is for another name ({ $detail }): check --base-url (or api.server / api.base_url in the config); behind TLS inspection, ask IT to fix the proxy's certificate; no message went out
setting-proxy-auth = the proxy refused the credentials (407 Proxy Authentication Required): set HTTPS_PROXY=http://user:password@proxy:port with the right user and password (special characters in the password percent-encoded, a space as %20); no message went out
setting-proxy-unreachable = the proxy cannot be reached ({ $detail }): check the host and port in HTTPS_PROXY / HTTP_PROXY / ALL_PROXY; no message went out
setting-unknown-host = the host of { $origin } is unknown ({ $detail }): check --base-url, or api.server in the config (the id Wolkvox gave you, as in wv0042); no message went out
msg-setting-certificate = not sent: the server's certificate is not trusted (see SSL_CERT_FILE)
msg-setting-certificate-name = not sent: the server's certificate is for another name (check --base-url)
msg-setting-proxy-auth = not sent: the proxy refused the credentials (407)
msg-setting-proxy-unreachable = not sent: the proxy cannot be reached
msg-setting-unknown-host = not sent: unknown host (check --base-url)
dispatch-slowing-down = the server answered 429 (too many requests): token { $token } slows down to { $rate } requests/s
proxy-variable = the proxy variable { $variable } cannot be used: { $reason }. Write it as http://user:password@host:port (special characters in the user or password percent-encoded: a space as %20, @ as %40), or unset it
proxy-not-text = it is not valid text
proxy-not-url = it is not a URL the HTTP client can read (a space, a broken host or port?)
proxy-scheme = { $scheme }:// proxies are not supported (only http:// and https://)
proxy-no-host = it has no host
setting-proxy-refused = the proxy refused to open a connection to { $origin } without saying why: check the user and password in HTTPS_PROXY (tinyproxy answers a wrong password this way), and ask IT whether the proxy lets this host and port through; no message went out
msg-setting-proxy-refused = not sent: the proxy refused the connection (check HTTPS_PROXY)
# issue 26
reconcile-refused-in-body = Wolkvox refused the report call (code { $code } in an HTTP 200 answer: { $msg }): check the token (it needs access to reports) and today's quota; nothing was changed
reconcile-code-unreadable = the answer's code { $code } is not a number
reconcile-undecided-paginated = the report has more pages than this answer (the tool reads one), so a message missing from it may be on another page
reconcile-undecided-unreadable = the report has a record it cannot read (no telephone, text or date), which may be this message
reconcile-undecided-no-own-sent = the report lists none of this campaign's sent rows of the period, so it does not show that it covers this campaign
reconcile-undecided-own-sent-missing = the report does not list { $rows } of this campaign's sent rows, so it may be missing this one too
reconcile-undecided-before = the report lists this message only on { $date }, before the attempt: an earlier message, or a report in another time zone
output-clash = { $output } ({ $output_role }) is { $other } ({ $other_role }): writing it would replace that file; choose another file name. Nothing was written
file-role-list = the list
file-role-config = the config file
file-role-template = the template file
file-role-suppress = a suppression list
file-role-results = the results file
file-role-journal = the results' journal
file-role-workbook = the results' workbook
file-role-summary-json = --summary-json
file-role-xlsx = --xlsx
file-role-rows-to-fix = --rows-to-fix
send-stop-pilot-kept = the pilot batch is sent (--limit { $limit }); of the other { $rows } rows, { $not_sent } are recorded not_sent and { $kept } keep their earlier status (unknown or failed): check the pilot's results, then send the rest
send-stop-quota-kept = today's quota was not enough for { $rows } rows (--partial): { $not_sent } are recorded not_sent and { $kept } keep their earlier status (unknown or failed); the quota renews tomorrow
reconcile-undecided-ambiguous-phone = the report lists this text on { $date } to a number without its country code that is also another of this campaign's numbers, so it may be either's
# issue 27
status-meaning-held = Not sent: the send ledger shows this person already got this message within `[ledger] repeat_window`, in any results file (or enough messages, `[ledger] max_per_phone`); `msg` says when and where. `--allow-repeat` sends it.
status-label-held = Held (already sent)
status-word-held = held
ledger-error = cannot use the send ledger { $path }: { $problem }. Nothing was sent, and the journal and results are as they were. Fix it and run the same command again, or add --no-ledger: that run neither checks nor records what other runs and results files sent, so a person may get the same message twice.
ledger-no-place = there is no folder for the send ledger (no home or state folder): give one with --ledger PATH or [ledger] path, or add --no-ledger (then nothing stops a message another run already sent from going out again). Nothing was sent.
ledger-problem-locked = another run or program holds it locked (waited up to { $seconds } s)
ledger-problem-corrupt = it is damaged (not a readable ledger); move it aside to start a new one
ledger-problem-full = the disk is full
ledger-problem-cannot-open = it cannot be opened or written ({ $error })
ledger-problem-other = { $error }
ledger-problem-newer = it was written by a newer version of wolkvox-dispatch (schema { $version }): update the tool
ledger-cap-invalid = { $value } is not a frequency cap: write COUNT/PERIOD, for example "2/24h"
ledger-already-sent = this list was already sent: { $held } of its { $valid } valid rows got the same message on { $when } (results { $results }). Nothing was sent (exit 2). To send it again on purpose, add --allow-repeat; `wolkvox-dispatch history --since 7d` lists what went out.
msg-held-repeat = held: the same message went to this number on { $when } ({ $status }, results { $results }, row { $row }); --allow-repeat sends it again
msg-held-cap = held: this number already got { $count } messages within { $per } ([ledger] max_per_phone), the last on { $when } (results { $results }); --allow-repeat sends it
msg-held-changed = held: the text of this row changed since this number was sent row { $row } on { $when } (text sent: { $excerpt }); --resume --resend-changed sends the new text
msg-kept = { $earlier }; now { $now }
send-held = { $rows ->
        [one] 1 row held: the send ledger shows it already went out (see its msg); --allow-repeat, or --resend-changed with --resume, sends it on purpose
       *[other] { $rows } rows held: the send ledger shows they already went out (see their msg); --allow-repeat, or --resend-changed with --resume, sends them on purpose
    }
validate-held = row { $row }: held: { $why }
send-held = { $rows } rows held: the send ledger shows they already went out (see their msg); --allow-repeat, or --resend-changed with --resume, sends them on purpose
validate-held = row { $row }: { $why }
validate-held-totals = { $rows } of the valid rows would be held (the send ledger shows they already went out)
cli-arg-ledger = The send ledger (SQLite) [config: ledger.path, default: the user's state folder, e.g. ~/.local/state/wolkvox-dispatch/ledger.sqlite3]
cli-arg-no-ledger = Do not check or record the send ledger: a message another run or results file already sent may go out again
cli-send-allow-repeat = Send rows the ledger holds because the same message already went out (within ledger.repeat_window) or the number reached ledger.max_per_phone
cli-send-resend-changed = With --resume: send rows whose text changed since this campaign sent their number a message
cli-history-about = What the send ledger knows: `history PHONE`, `history --since 7d`, `history import RESULTS...` (seed it from results files), `history forget PHONE` (erase a person)
cli-history-words = PHONE; or `import` RESULTS...; or `forget` PHONE
cli-history-since = Only messages of the last DURATION (e.g. 7d) [default: everything for a PHONE, 7d for all]
cli-history-format = Output format: text for people, json or csv for scripts
cli-history-config = TOML configuration file: ledger.path, campaign.timezone, phone.default_country
history-none = The send ledger { $path } has nothing for { $what }.
history-everyone = everyone since { $since }
history-line = { $when }  { $telephone }  { $status }  { $kind }  { $excerpt }  ({ $results }, row { $row })
history-imported = { $added } messages added to the send ledger from { $files } results files ({ $known } already known).
history-forgotten = { $count } messages to { $telephone } erased from the send ledger { $path }.
history-no-phone = give the telephone: `history forget PHONE`
history-no-results = give at least one results file: `history import RESULTS...`
history-bad-phone = { $phone } is not a telephone number this tool can send to: { $reason }
history-bad-since = --since { $value }: { $error }
history-import-unreadable = cannot import { $path }: { $error }
report-went-out-rows-gone = { $count } more messages went out in this campaign than its rows show (rows deleted from the list, a phone changed, or an earlier text before --resend-changed): the journal records them, and `wolkvox-dispatch history` lists them

# newcomer fixes
report-not-delivered = { $rows ->
        [one] 1 row was not delivered: Wolkvox refused it (failed), and sending it again unchanged would be refused again. Fix the cause named above, then send it with:
       *[other] { $rows } rows were not delivered: Wolkvox refused them (failed), and sending them again unchanged would be refused again. Fix the cause named above, then send them with:
    }
summary-next-report = Next: { $command } says why each row was not delivered and what fixes it
summary-next-retry = Once the cause is fixed, this sends the failed rows again: { $command }
workbook-sheet-to-fix = To fix
list-finish-when = it would finish around { $finish }{ $later }
cli-validate-allow-duplicates = Count every copy of a repeated telephone + message as valid (as send with this flag would send each), instead of reporting later copies `duplicate` [config: input.allow_duplicates]

# outputs never state files
file-role-ledger = the send ledger
# ledger identity
ledger-keep-too-short = { $keep } is shorter than repeat_window ({ $window }): pruning would erase the record of messages that must still hold a repeat. Give [ledger] keep at least the repeat window, or leave it out to keep everything
ledger-problem-empty = it is empty (0 bytes): a ledger this tool made is never empty, so it was most likely emptied or cut short, and what it recorded is gone. Restore it from a backup; or, knowing that messages sent before are then not held, move it aside to start a new one
ledger-already-claimed = this list is claimed by a run that did not finish (or is still running): { $held } of its { $valid } valid rows have the same message claimed on { $when } (results { $results }), which may have gone out. Nothing was sent (exit 2). Resume that run with --resume (its results file) to settle them; to send this list anyway, add --allow-repeat.
msg-held-claimed = held: the same message to this number was claimed on { $when } by a run that did not finish or is still running (results { $results }, row { $row }), and may have gone out; the --resume of that run settles it; --allow-repeat sends it again
ledger-settle-failed = could not record in the send ledger { $path } how this run's messages ended: { $problem }. The messages it sent stay claimed (pending), which holds them for other runs; the next run of this campaign (--resume) records them from its journal.
# ledger follow-ups
msg-held-changed-text-unknown = not known: the send ledger was off (--no-ledger), and the journal keeps no text
ledger-files-more = { $files } and { $more } more
ledger-period-days = { $n ->
    [one] 1 day
   *[other] { $n } days
    }
ledger-period-hours = { $n ->
    [one] 1 hour
   *[other] { $n } hours
    }
ledger-period-minutes = { $n ->
    [one] 1 minute
   *[other] { $n } minutes
    }
send-held-changed = { $rows } rows are held: their text changed since this campaign sent their number a message, and the new text is not sent (see their msg: when, which row, the text sent). To send the new texts on purpose: the same command with --resume --resend-changed
summary-held-changed = changed
summary-held-changed-why = (held: the text changed, and their number already got this campaign's earlier text; --resume --resend-changed sends the new one)

# issue 31
msg-answer-connect-failed = connection failed
msg-answer-timeout = timeout
msg-answer-dropped = connection lost
msg-answer-redirected-to = redirected to { $location }
msg-answer-redirected-nowhere = redirected (no Location given)
journal-line-no-checksum = no checksum
journal-line-checksum-mismatch = checksum mismatch
journal-line-not-an-event = not an event: { $why }
msg-retried = { $earlier } (retried: { $msg })
msg-stopped-last-answer = { $why } (last answer: { $answer })
stop-not-sent = not sent
# issue 32
ledger-url-not-postgres = it is not a PostgreSQL url: write postgres://USER@HOST[:PORT]/DATABASE (add ?sslmode=require for TLS)
ledger-url-invalid = it is not a valid PostgreSQL url ({ $error }): write postgres://USER@HOST[:PORT]/DATABASE
ledger-url-password = it holds a password, which must not be in a config file: remove it from the url and give it in the PGPASSWORD environment variable or in ~/.pgpass (HOST:PORT:DATABASE:USER:PASSWORD, chmod 600)
ledger-pg-unreachable = the database server cannot be reached or stopped answering ({ $error })
ledger-pg-auth = the database refused the login ({ $error }): check the user in [ledger] url and the password in PGPASSWORD or ~/.pgpass
ledger-pg-no-database = the database does not exist ({ $error }): create it (createdb) or fix the name in [ledger] url
ledger-pg-privilege = the database user may not do this ({ $error }): it needs to create tables in the database the first time (or run `wolkvox-dispatch ledger migrate` as one who may), then read and write them
ledger-pgpass-open = { $path } is ignored: others may read it. Make it private: chmod 600 { $path }
ledger-lost-mid-run = the send ledger { $path } was lost while sending: { $problem }. The run stopped starting requests; every message it sent was claimed before it left, and the rest stay not_sent
ledger-migrated = the send ledger { $path } is at schema version { $to } (was { $from })
ledger-migrate-file = the send ledger { $path } is a file on this machine: it is brought up to date whenever it is opened. `ledger migrate` is for [ledger] url
ledger-no-subcommand = say what to do with the ledger: `wolkvox-dispatch ledger migrate`
history-imported-ledger = { $added } entries added to the send ledger from the ledger file { $file } ({ $known } were already there; claims of unfinished runs come in as unknown)
cli-ledger-about = The team's send ledger in PostgreSQL ([ledger] url): `ledger migrate` creates or updates its tables
cli-ledger-words = `migrate`: create or update the ledger's tables in the database
ledger-pg-certificate = the database server's certificate is not trusted or is for another name ({ $error }): if it is signed by your company's CA, give that CA in SSL_CERT_FILE or SSL_CERT_DIR (see docs/networks.md); else check the host in [ledger] url
ledger-pg-no-password = the database asks for a password and none was given: set PGPASSWORD, or add a line to ~/.pgpass (HOST:PORT:DATABASE:USER:PASSWORD, chmod 600){ $hint }
