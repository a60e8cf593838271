# wolkvox-dispatch: cada línea escrita para una persona, en español (de Colombia:
# usted). Los mismos ids y marcadores que en.ftl; `cargo test i18n` lo comprueba.
# Las llaves en el texto se escriben {"{"} y {"}"}.

## La línea de comandos (--help).

cli-root-about = Envía una hoja de contactos como mensajes de WhatsApp por la API de Wolkvox, de forma segura y tan rápido como la API lo permite
cli-arg-lang = El idioma de los mensajes: es o en [predeterminado: ui.lang del archivo de configuración; si no, el idioma del sistema: LC_ALL, LC_MESSAGES, LANG]
cli-send-about = Valida una lista de contactos, envía cada fila válida y registra el resultado de cada una
cli-validate-about = Revisa una lista de contactos sin enviar nada (no necesita token)
cli-report-about = Resume un archivo de resultados (también uno que aún se está escribiendo): totales, fallos, siguiente paso
cli-reconcile-about = Resuelve las filas `unknown` con el informe de mensajes enviados de Wolkvox (cdr_3): las que aparecen en él pasan a `sent`, las que no, a `not_sent` (un --resume normal las envía una vez)
cli-arg-input = La lista de contactos: CSV u otro texto delimitado, o una hoja de cálculo (.xlsx, .xlsm, .xlsb, .xls, .ods)
cli-arg-config = Archivo de configuración TOML (vea config.example.es.toml)
cli-arg-max-rows = Rechaza listas con más filas de datos que esto [config: limits.max_rows, predeterminado 10000]
cli-arg-sheet = Hojas de cálculo: la hoja que se lee [config: input.sheet, predeterminado: la hoja con la que se abre el libro, si no la primera visible]
cli-arg-delimiter = Archivos de texto: el separador de campos: , ; tab | [config: input.delimiter, predeterminado: el que se detecta en el encabezado]
cli-arg-template = Arma el mensaje de cada fila con este archivo de plantilla (sintaxis Jinja, las columnas como variables) [config: message.template]
cli-arg-allow-duplicates = Envía cada copia de un mismo teléfono + mensaje, en lugar de marcar las copias siguientes como `duplicate` [config: input.allow_duplicates]
cli-arg-suppress = Lista de exclusión: a sus números nunca se les envía nada (se puede repetir; se suma a campaign.suppress)
cli-arg-hsm = Envía la plantilla HSM aprobada TEMPLATE_NAME (api=send_template_official) en lugar de un mensaje libre; una columna `template_name` la cambia por fila [config: hsm.template_name]
cli-arg-hsm-vars = Columnas cuyos valores, en este orden, llenan las variables de la plantilla (unidos con `;`), p. ej. nombre,fecha,hora [config: hsm.vars]
cli-arg-results = CSV de resultados [predeterminado: <nombre de INPUT>.results.csv junto a INPUT]
cli-arg-dry-run = Valida y registra lo que se enviaría, sin enviar nada y sin necesitar token
cli-arg-resume = Continúa una ejecución anterior registrada en el archivo de resultados: se saltan las filas ya resueltas
cli-arg-retry-failed = Con --resume: vuelve a enviar las filas registradas como `failed`
cli-arg-retry-unknown = Con --resume: vuelve a enviar las filas registradas como `unknown` (puede que ya se hayan entregado)
cli-arg-base-url = Reemplaza el origen https://wv{"{"}server{"}"}.wolkvox.com (un proxy o un servidor de pruebas local)
cli-arg-rate = Como máximo N solicitudes por segundo por token [config: limits.requests_per_second, predeterminado 10]
cli-arg-no-quota-check = No pregunta a Wolkvox (token_info, una llamada por token) cuánto queda del cupo de hoy antes de enviar
cli-arg-partial = Si el cupo de hoy no alcanza para la lista: envía lo que cabe y registra el resto como `not_sent` (continúe mañana con --resume)
cli-arg-summary-json = Escribe además el resumen final en JSON en FILE (totales por estado, duración, ritmo, código de salida), para monitoreo
cli-arg-quiet = Sin barra de progreso y solo advertencias en el registro; el resumen se imprime igual
cli-arg-log-format = Formato de las líneas de registro en stderr
cli-arg-wait-for-window = Fuera del horario de contacto (campaign.hours), espera a que abra en lugar de detenerse
cli-arg-test-to = Envía solo el mensaje de la primera fila válida, tal como lo haría la campaña, a PHONE en lugar de a la lista; muestra la respuesta de Wolkvox y no registra nada
cli-arg-preview = Con --dry-run: muestra las primeras N filas válidas exactamente como se enviarían (0: ninguna)
cli-arg-limit = Envía como máximo N filas en esta ejecución (un lote piloto) y se detiene (salida 3); el resto queda como `not_sent` y lo envía --resume
cli-arg-no-xlsx = No escribe el libro de Excel <nombre de resultados>.xlsx junto a los resultados [config: results.xlsx = false]
cli-arg-no-template-check = No revisa las plantillas HSM en la cuenta (list_templates, una llamada por conector) antes de enviar
cli-arg-max-failures = Detiene la ejecución cuando N filas seguidas son rechazadas con la misma respuesta (un conector o una plantilla equivocados, o ventanas cerradas); 0 nunca detiene [config: campaign.max_failures, predeterminado 20]
cli-validate-base-url = Reemplaza el origen https://wv{"{"}server{"}"}.wolkvox.com para la revisión de plantillas (un proxy o un servidor de pruebas local)
cli-validate-no-template-check = No revisa las plantillas HSM en la cuenta, aunque WOLKVOX_TOKEN esté definido
cli-validate-preview = Muestra las primeras N filas válidas exactamente como se enviarían (0: ninguna)
cli-report-results = Un archivo de resultados escrito por `send` (o `send --dry-run`)
cli-report-format = Formato de salida: text para personas, json para programas
cli-report-rows-to-fix = Escribe en FILE las filas de la lista que quedaron invalid, failed o not_sent, con todas sus columnas, para corregirlas y enviarlas como una lista nueva (.xlsx para un libro de Excel; si no, con el separador y la codificación de la lista)
cli-report-xlsx = Escribe además el libro de Excel de estos resultados en FILE (la lista debe seguir donde la leyó la ejecución, o junto a los resultados)
cli-reconcile-results = Un archivo de resultados escrito por `send` (su diario debe estar junto a él)
cli-reconcile-dry-run = Muestra lo que cambiaría, sin cambiar el archivo de resultados
cli-reconcile-settle-after = Una fila ausente del informe cuenta como no enviada solo si el informe llega hasta este tiempo después de su intento (los mensajes pueden aparecer tarde)
cli-reconcile-config = Archivo de configuración TOML: api.server (o api.base_url), campaign.timezone, phone.default_country

## Las palabras propias de clap.
cli-default = {" "}[predeterminado: { $value }]
cli-possible-values = {" "}[valores posibles: { $values }]
cli-heading-arguments = Argumentos
cli-heading-options = Opciones
cli-heading-commands = Comandos
cli-command-value-name = COMANDO
cli-help-flag = Muestra la ayuda
cli-version-flag = Muestra la versión
cli-usage-heading = Uso:
cli-help-template =
    {"{"}about-with-newline{"}"}
    Uso: {"{"}usage{"}"}

    {"{"}all-args{"}"}{"{"}after-help{"}"}
cli-error-unknown-argument = no se reconoce el argumento '{ $arg }'
cli-error-unknown-command = no se reconoce el comando '{ $command }'
cli-error-invalid-value = el valor '{ $value }' no es válido para '{ $arg }'
cli-error-missing = faltan argumentos obligatorios: { $arg }
cli-error-conflict = el argumento '{ $arg }' no se puede usar junto con '{ $other }'
cli-error-missing-command = falta el comando
cli-error-other = no se pudieron leer los argumentos
cli-error-valid-values = [valores posibles: { $values }]
cli-error-suggestion = sugerencia: existe un argumento parecido: '{ $suggestion }'
cli-error-suggestion-command = sugerencia: existe un comando parecido: '{ $suggestion }'
cli-error-more = Para más información, pruebe '--help'.

## Horario de contacto y fechas.
window-never-opens = la ventana de contacto no abre en los próximos años (campaign.hours y campaign.holidays no dejan tiempo): no se enviaría nada
window-open-until = ventana abierta ahora hasta el { $until }
window-open-no-close = ventana abierta ahora, sin hora de cierre próxima
window-closed-next = ventana cerrada ahora; vuelve a abrir el { $opens } hasta { $until }
window-closed-next-no-close = ventana cerrada ahora; vuelve a abrir el { $opens } sin hora de cierre próxima
window-sending-time-left = {" "}({ $time } de tiempo de envío)
window-fits = la ejecución cabe
window-does-not-fit = la ejecución NO cabe: cerca del { $percent } % se enviaría antes de que cierre la ventana; el resto quedaría registrado como not_sent (continúe con --resume en la siguiente ventana, o use --wait-for-window)
window-describe = { $when }{ $left }; el envío necesita al menos { $needed }: { $verdict }
weekday-monday = lunes
weekday-tuesday = martes
weekday-wednesday = miércoles
weekday-thursday = jueves
weekday-friday = viernes
weekday-saturday = sábado
weekday-sunday = domingo

## Lo que validate y send dicen de una lista.
list-opt-out-lists = listas de exclusión: { $numbers } números de { $files ->
        [one] 1 archivo
       *[other] { $files } archivos
    }
list-opt-out-ignored = , { $entries } entradas omitidas porque no son números de teléfono (vea las advertencias)
list-finish-later-windows = , continuando en las siguientes ventanas de contacto (con --wait-for-window, o con --resume en cada una)
list-finish-around = a { $rate } solicitudes/s por token con { $tokens ->
        [one] 1 token
       *[other] { $tokens } tokens
    }, terminaría hacia el { $finish }{ $later }
list-previews-heading = { $rows ->
        [one] la primera fila válida, exactamente como se enviaría:
       *[other] las primeras { $rows } filas válidas, exactamente como se enviarían:
    }
validate-problem = fila { $row }, columna { $column }: { $reason }
validate-duplicate = fila { $row }: duplicada de la fila { $of_row } (mismo teléfono y mensaje); no se enviaría
validate-suppressed = fila { $row }: { $telephone } está en la lista de exclusión { $list }; no se enviaría (omitido por lista de exclusión)
validate-totals = { $rows ->
        [one] 1 fila
       *[other] { $rows } filas
    }: { $invalid ->
        [one] 1 no válida
       *[other] { $invalid } no válidas
    }, { $duplicate ->
        [one] 1 duplicada
       *[other] { $duplicate } duplicadas
    }, { $suppressed ->
        [one] 1 omitida
       *[other] { $suppressed } omitidas
    } por lista de exclusión, { $valid ->
        [one] 1 válida
       *[other] { $valid } válidas
    } ({ $list })
validate-estimate = estimación: { $line }
validate-contact-hours = horario de contacto: { $line } (a { $rate } solicitudes/s por token con { $tokens ->
        [one] 1 token
       *[other] { $tokens } tokens
    })

## Los problemas de una fila (en el archivo de resultados quedan en inglés).
row-connector-empty = está vacío y api.connector_id no está definido en la configuración
row-too-long = tiene más de { $kib } KiB, así que no se leyó completa: un mensaje tiene como máximo { $max } caracteres; revise esta fila (unas comillas sin cerrar se tragan las filas siguientes)
row-field-count = tiene { $fields } campos, pero el encabezado tiene { $width }: ¿hay un separador sin comillas dentro de un mensaje? ponga esos campos entre comillas dobles
row-template-name-empty = está vacío y no se indicó plantilla con --hsm ni con hsm.template_name
row-template-variable-of = variable { $index } de { $count } de la plantilla: { $reason }
row-variable = variable { $index }: { $reason }
row-variable-empty = está vacía: cada variable de la plantilla necesita un valor, y WhatsApp rechaza una plantilla con una variable vacía
row-variable-separator = { $value } contiene `;`, que separa las variables en template_vars: correría todas las variables siguientes; reemplace el `;` (por ejemplo por `,`)
row-variable-line-break = { $value } contiene un salto de línea o un tabulador, que WhatsApp rechaza en una variable de plantilla; escríbala en una sola línea
row-url-invalid = { $url } no es una URL ({ $error }); escríbala como https://example.com/imagen.jpg
row-url-not-https = { $url } debe empezar por https:// (WhatsApp descarga el archivo desde una URL https pública)
row-url-no-host = { $url } no tiene servidor
row-message-blank = está en blanco: no hay nada que enviar
row-message-too-long = tiene { $chars } caracteres; WhatsApp permite como máximo { $max }

## Qué columna se usa para qué.
columns-summary = columnas: { $parts }
columns-per-row = {" "}(por fila: { $column })
columns-hsm-named = message <- plantilla HSM { $name }{ $per_row }
columns-hsm = message <- plantilla HSM{ $per_row }
columns-template = message <- plantilla ({ $origin }) con { $used }
columns-no-column = ninguna columna
columns-connector-default = connector_id <- { $column } (celdas vacías: api.connector_id { $default })
columns-in-all = … { $count } columnas en total
columns-template-name-ignored = { $path }: se ignora la columna `{ $column }`: se envía la columna `{ $message }` como mensajes libres; para enviar plantillas, use --hsm TEMPLATE_NAME (la columna la cambia entonces por fila)

## El encabezado de una lista.
header-missing = { $path }: no hay columna `{ $column }` (el encabezado tiene: { $header }); cambie el nombre de la columna o defina { $key } en la configuración
header-ambiguous = { $path }: dos columnas pueden ser la columna { $role }: { $first } (columna { $first_index }) y { $second } (columna { $second_index }); cambie el nombre de una o quítela, o indique cuál usar con { $key } en la configuración
header-no-connector = { $path }: no hay connector_id: agregue una columna `{ $column }` o defina api.connector_id en la configuración
header-repeated = { $path }: la columna `{ $column }` aparece dos veces en el encabezado (columnas { $first } y { $second }); deje una
header-no-message = { $path }: no hay columna `{ $column }` (el encabezado tiene: { $header }); cambie el nombre de la columna o defina columns.message en la configuración, o arme cada mensaje con una plantilla usando --template FILE, o use --hsm TEMPLATE_NAME para enviar una plantilla HSM, que no necesita columna de mensaje
header-missing-var = { $path }: no hay columna `{ $column }` para la variable { $index } de { $setting } (el encabezado tiene: { $header }); agregue la columna o corrija { $setting }
header-no-template-name = { $path }: { $setting } nombra las variables de la plantilla, pero no se indicó ninguna plantilla: use --hsm TEMPLATE_NAME, defina hsm.template_name en la configuración o agregue una columna `{ $column }`
header-template-and-hsm = { $path }: --template (message.template) arma mensajes libres y --hsm (hsm.*) envía plantillas HSM: use uno o el otro

row-template-uses-empty = está vacía, y la plantilla del mensaje la usa ({ $variable })
row-template-render = no se puede armar para esta fila: { $error }
template-line = {" "}(línea { $line })
template-syntax = { $origin }: no es una plantilla válida: { $detail }
template-missing-column = { $origin }: la plantilla usa `{ $variable }`, pero { $path } no tiene esa columna; las columnas que puede usar son: { $available }
template-ambiguous = { $origin }: la variable de plantilla `{ $variable }` corresponde a dos columnas de { $path }, { $first } y { $second }: cambie el nombre de una
connector-too-long = no es un id de conector: tiene más de { $max } caracteres
connector-bad-character = { $id } no es un id de conector: tiene { $bad }; use solo letras, dígitos, - y _ (el id que Wolkvox muestra para el conector de WhatsApp)

## Números de teléfono.
phone-empty = está vacío
phone-too-long = { $shown } tiene { $chars } caracteres: demasiado largo para ser un número de teléfono
phone-scientific = { $shown } está en notación científica: Excel convirtió el número en decimal y perdió dígitos; dé el .xlsx directamente (se lee tal como se escribió), o dé formato de Texto a la columna en la hoja de cálculo y exporte de nuevo
phone-bad-characters = { $shown } no es un número de teléfono: solo se permiten dígitos, +, espacios, guiones, puntos y paréntesis
phone-too-few = { $shown } tiene { $digits } dígitos: muy pocos para un número de teléfono
phone-too-many = { $shown } tiene { $digits } dígitos: más de los { $max } que puede tener un número internacional
phone-not-national-nor-international = { $shown } no es un número válido, ni como número nacional de { $country } (phone.default_country) ni con indicativo de país
phone-not-international = { $shown } no es un número válido con indicativo de país: escríbalo con el indicativo (p. ej. +57 300 123 4567), o defina phone.default_country (p. ej. "CO") para números nacionales
phone-invalid = { $shown } no es un número de teléfono válido
phone-invalid-in = { $shown } no es un número válido en { $country }
phone-invalid-in-hint = { $shown } no es un número válido en { $country }; si es un número nacional (sin indicativo de país), defina phone.default_country (p. ej. "CO")
phone-invalid-unknown-country = { $shown } no es un número de teléfono válido (indicativo de país desconocido)
phone-invalid-unknown-country-hint = { $shown } no es un número de teléfono válido (indicativo de país desconocido); si es un número nacional (sin indicativo de país), defina phone.default_country (p. ej. "CO")
phone-kind-in = { $shown } es un número { $kind } de { $country }: no puede recibir mensajes de WhatsApp; use un número celular
phone-kind-in-hint = { $shown } es un número { $kind } de { $country }: no puede recibir mensajes de WhatsApp; use un número celular; si es un número nacional (sin indicativo de país), defina phone.default_country (p. ej. "CO")
phone-kind = { $shown } es un número { $kind }: no puede recibir mensajes de WhatsApp; use un número celular
phone-kind-hint = { $shown } es un número { $kind }: no puede recibir mensajes de WhatsApp; use un número celular; si es un número nacional (sin indicativo de país), defina phone.default_country (p. ej. "CO")
phone-kind-fixed-line = fijo
phone-kind-toll-free = gratuito (línea 800)
phone-kind-premium-rate = de tarifa especial
phone-kind-shared-cost = de costo compartido
phone-kind-pager = de buscapersonas
phone-kind-uan = de empresa (UAN)
phone-kind-emergency = de emergencia
phone-kind-voicemail = de buzón de voz
phone-kind-short-code = corto
phone-kind-standard-rate = de servicio con tarifa estándar
phone-kind-carrier = propio de un operador
phone-kind-domestic = de servicio solo nacional
phone-kind-service = de servicio

## La lectura de una lista.
input-open = no se puede abrir { $path }: { $error }
input-empty = { $path } está vacío: se esperaba una fila de encabezado (p. ej. telephone,message) seguida de los contactos
input-no-rows = { $path }: tiene encabezado pero ninguna fila de datos: no hay nada que enviar
input-parse = { $path }, línea { $line }: { $message }
input-too-many-rows = { $path }: más de { $max_rows } filas de datos: divida la lista, o suba el límite con --max-rows o limits.max_rows
input-spreadsheet = no se puede leer { $path } como hoja de cálculo: { $message }; si en realidad es un archivo CSV, póngale un nombre terminado en .csv
input-no-such-sheet = { $path }: no hay ninguna hoja llamada { $wanted } (--sheet o input.sheet); sus hojas son: { $sheets }
input-header-too-long = la línea de encabezado tiene más de { $kib } KiB: no es el encabezado de una lista de contactos (revise el archivo o su separador)
input-sheet-ignored = { $path }: se lee como texto delimitado (por su extensión no es una hoja de cálculo); se ignora la hoja { $sheet }
input-place-header = columna { $column } del encabezado
input-place-row = fila { $row }, columna { $column }
input-encoding-undecided = aún no se sabe (solo ASCII hasta ahora)
input-not-utf8-while = no está en UTF-8, mientras que { $place } sí: el archivo mezcla codificaciones (unos campos en UTF-8 y otros no), así que algunas tildes se enviarían dañadas; expórtelo de nuevo como "CSV UTF-8" y revise las tildes de esa fila
input-part-utf8 = una parte está en UTF-8 y otra no: el archivo mezcla codificaciones (unos campos en UTF-8 y otros no), así que algunas tildes se enviarían dañadas; expórtelo de nuevo como "CSV UTF-8" y revise las tildes de esa fila
input-reading-windows-1252 = la lista no está en UTF-8: se lee como Windows-1252 (defina input.encoding para elegir)
input-not-utf8-config = no es UTF-8 válido, como exige input.encoding = "utf-8": guarde el archivo en UTF-8 (Excel: "CSV UTF-8"), o defina input.encoding = "windows-1252" o "auto"
input-not-utf8-bom = no es UTF-8 válido, aunque el archivo empieza con una marca de orden de bytes UTF-8: el archivo mezcla codificaciones; expórtelo de nuevo como "CSV UTF-8"
input-an-earlier-field = un campo anterior
input-format-text = texto delimitado, separador { $delimiter }, codificación { $encoding }
input-format-sheet = hoja de cálculo, hoja { $sheet }
input-read-error = error de lectura: { $error }
input-not-utf8 = no es UTF-8 válido: guarde el archivo en UTF-8 (Excel: "CSV UTF-8")
input-not-csv = no es una tabla CSV legible ({ $error })

## Listas de exclusión.
suppress-read = no se puede leer la lista de exclusión { $path }: { $error }; corrija la ruta dada con --suppress o campaign.suppress (no se envió nada)
suppress-input = lista de exclusión: { $error } (no se envió nada)
suppress-no-numbers = lista de exclusión { $path }: ninguna de sus { $entries } entradas es un número de teléfono (línea { $line }: { $reason }); ¿es el archivo correcto? Los números van uno por línea, o en la primera columna, o en una columna llamada telephone, phone, telefono o celular (no se envió nada)
suppress-entry-ignored = lista de exclusión { $path }, línea { $line }: teléfono { $reason }; se ignora esta entrada y el resto de la lista se aplica
suppress-more-ignored = lista de exclusión { $path }: otras { $count } entradas no son números de teléfono y se ignoran

## Errores del sistema operativo.
io-not-found = no existe el archivo o el directorio
io-permission-denied = permiso denegado
io-already-exists = el archivo ya existe
io-storage-full = no queda espacio en el disco
io-is-a-directory = es un directorio
io-not-a-directory = no es un directorio
io-read-only = el sistema de archivos es de solo lectura
io-timed-out = se agotó el tiempo de espera
io-connection-refused = conexión rechazada

## El resumen al final de una ejecución.
summary-rows = filas
summary-skipped = saltadas
summary-skipped-why = (ya resueltas en una ejecución anterior)
summary-this-run = esta ejecución
summary-this-run-counts = enviadas { $sent }, fallidas { $failed }  (los totales de arriba son los de toda la campaña)
summary-elapsed = duración
summary-rate = ({ $rate } mensajes/s)
summary-estimate = estimación
summary-hours = horario
summary-results = resultados
summary-stopped = detenida antes de terminar: { $why }
preview-row = fila { $row } -> { $telephone }:
preview-template = fila { $row } -> { $telephone }: plantilla { $name }, variables { $vars }

## send.
send-start = wolkvox-dispatch { $version }: { $what } { $list } -> { $results } ({ $rows ->
        [one] 1 fila
       *[other] { $rows } filas
    }; { $settings })
send-start-dry-run = simulación de
send-start-sending = envío de
send-title-dry-run = simulación: no se envió nada
send-title-stopped = ejecución detenida
send-title-finished = ejecución terminada
send-sending = enviando { $rows ->
        [one] 1 fila
       *[other] { $rows } filas
    } con { $tokens ->
        [one] 1 token
       *[other] { $tokens } tokens
    }
send-contact-hours = horario de contacto: { $line }
send-stop-results-unfinished = no se puede terminar el archivo de resultados ({ $error })
send-stop-quota = el cupo de hoy no alcanzó para { $rows } filas, registradas como not_sent (--partial); el cupo se renueva mañana
send-stop-pilot = el lote piloto está enviado (--limit { $limit }); las otras { $rows } filas quedan registradas como not_sent: revise los resultados del piloto y luego envíe el resto
send-stop-disk = Los totales de arriba son todos los resultados recibidos; los que no se pudieron escribir quedan `unknown` en el diario, así que ninguna fila se envía dos veces. Libere espacio en el disco antes de continuar.
send-to-continue = Para continuar, ejecute: { $command }
send-skipped = { $rows ->
        [one] 1 fila ya se resolvió en una ejecución anterior y se salta
       *[other] { $rows } filas ya se resolvieron en una ejecución anterior y se saltan
    }
send-settings-tokens = { $tokens ->
        [one] 1 token
       *[other] { $tokens } tokens
    }
send-settings-rate = { $rate } solicitudes/s y { $in_flight } a la vez por token
send-settings-connector = conector { $connector }
send-settings-hours = con horario de contacto
send-estimate = { $messages ->
        [one] 1 mensaje tardaría
       *[other] { $messages } mensajes tardarían
    } al menos { $time } a { $rate } solicitudes/s por token con { $tokens ->
        [one] 1 token
       *[other] { $tokens } tokens
    } (cada token además lleva como máximo { $in_flight } solicitudes a la vez, así que un servidor lento lo alarga){ $finish }
send-workbook = libro de Excel: { $path }
send-workbook-failed = los resultados están en el CSV, pero { $error }
send-summary-failed = no se puede escribir el resumen en { $path }: { $error }
send-no-signals = no se puede escuchar Ctrl-C/SIGTERM: { $error }
send-interrupted = interrumpido: no salen solicitudes nuevas; esperando las que están en curso (oprima Ctrl-C otra vez para salir de inmediato)
send-interrupted-again = interrumpido otra vez: saliendo ahora. Todos los resultados recibidos hasta ahora están en { $results }; las filas que estaban en curso quedarán `unknown` (puede que se hayan entregado).
workbook-started = Inicio
workbook-finished = Fin
workbook-dry-run = Simulación
workbook-nothing-sent = no se envió nada
workbook-to-continue = Para continuar

## El libro de Excel.
workbook-list = Lista
workbook-results = Resultados
workbook-campaign = Campaña
workbook-first-answer = Primera respuesta
workbook-last-answer = Última respuesta
workbook-reconciled = Conciliado
workbook-list-changed = { $list } cambió desde que la ejecución la leyó ({ $then } bytes entonces, { $now } ahora): las filas se emparejan por número, así que revíselas
workbook-no-list = no se encuentra la lista de contactos de { $results }: no está donde la leyó la ejecución ni junto a los resultados; vuelva a ponerla, o nómbrela como los resultados (lista.csv para lista.results.csv)
workbook-write = no se puede escribir el libro de Excel { $path }: { $message }
workbook-column-result = Resultado
workbook-column-reason = Motivo
workbook-column-code = Código
workbook-column-attempts = Intentos
workbook-column-time = Hora
workbook-column-sheet-row = Fila en la hoja
workbook-sheet-rows = Filas
workbook-sheet-summary = Resumen
workbook-no-result = Sin resultado registrado
workbook-what-to-do = {" "}(qué hacer: { $fix })

## Estados: el archivo de resultados guarda los códigos (sent, not_sent...); las personas leen esto.
status-help-heading = Estados del archivo de resultados (columna `status`):
status-meaning-sent = Wolkvox aceptó el mensaje (HTTP 2xx y `code` 2xx en el cuerpo). No prueba la entrega.
status-meaning-failed = Wolkvox rechazó el mensaje, o todos los intentos fallaron de una forma que con certeza no lo entregó.
status-meaning-unknown = La solicitud salió pero la respuesta nunca llegó (tiempo agotado, conexión cortada): puede que el mensaje se haya entregado. No se envía de nuevo salvo con `--resume --retry-unknown`.
status-meaning-invalid = La fila no pasó la validación; `msg` dice qué columna y por qué.
status-meaning-duplicate = Mismo número y mensaje que una fila anterior; no se envía.
status-meaning-suppressed = El número está en una lista de exclusión (`--suppress`, `campaign.suppress`); nunca se envía, ni siquiera con `--resume --retry-failed`.
status-meaning-not-sent = No se intentó porque la ejecución se detuvo antes (código de salida 3).
status-meaning-dry-run = Fila válida que se habría enviado (solo con `--dry-run`).
status-label-sent = Enviado
status-label-failed = Fallido: rechazado
status-label-unknown = Desconocido: puede que se haya entregado
status-label-invalid = No válido: no enviado
status-label-duplicate = Duplicado: no enviado
status-label-suppressed = Omitido por lista de exclusión: no enviado
status-label-not-sent = Aún no enviado
status-label-dry-run = Se enviaría (simulación)
status-word-sent = enviadas
status-word-failed = fallidas
status-word-unknown = desconocidas
status-word-invalid = no válidas
status-word-duplicate = duplicadas
status-word-suppressed = omitidas (lista de exclusión)
status-word-not-sent = no enviadas
status-word-dry-run = simuladas

## Por qué se detuvo una ejecución.
stop-interrupted = interrumpida (Ctrl-C o SIGTERM)
stop-quota-spent = todos los tokens gastaron el cupo de hoy (licencias x 1000 llamadas al día); se renueva mañana
stop-tokens-refused = Wolkvox rechazó todos los tokens de WOLKVOX_TOKEN (no válidos, vencidos o sin cupo); revise los tokens
stop-api-not-found = Wolkvox respondió { $msg }: revise api.server / --base-url
stop-redirected = el servidor respondió HTTP { $status } ({ $msg }) en lugar de la API: la URL base o el id del servidor están mal; revise api.server / api.base_url / --base-url
stop-service-down = todos los tokens fallaron { $failures } veces seguidas: el servicio parece caído
stop-record-failed = no se pueden registrar los resultados ({ $message })
stop-window-closed = fuera del horario de contacto (campaign.hours): la ventana vuelve a abrir { $opens }; ejecute entonces el comando de abajo, o agregue --wait-for-window para esperarla
stop-window-never = fuera del horario de contacto, y campaign.hours con campaign.holidays no dejan tiempo para enviar en los próximos años: revíselos
stop-same-refusal = { $rows } filas seguidas fueron rechazadas con la misma respuesta ({ $answer }): la campaña misma parece estar mal, así que no se envió el resto; { $fix }; las filas rechazadas quedan `failed` (envíelas de nuevo después de corregir con --resume --retry-failed); --max-failures / campaign.max_failures fija cuántos rechazos detienen una ejecución (0: nunca)
stop-same-refusal-fix = mire la respuesta de arriba: un id de conector equivocado, o una plantilla o un parámetro que la API rechaza, son las causas usuales

## Durante el envío.
dispatch-stopping = deteniendo: { $reason }
dispatch-waiting-window = fuera del horario de contacto: esperando hasta { $when } (Ctrl-C detiene; --resume continúa después)
dispatch-window-open = la ventana de contacto está abierta: enviando
dispatch-retry-after-capped = el servidor pidió esperar { $asked } (Retry-After) antes de reintentar; se espera como máximo { $most }
dispatch-timeout = fila { $row }: sin respuesta en { $timeout }: puede que se haya entregado; registrada como unknown
dispatch-maybe-delivered = fila { $row }: { $error } ({ $msg }): puede que se haya entregado; registrada como unknown
dispatch-token-retired = { $token } rechazado ({ $why }): no se usa en el resto de esta ejecución
dispatch-abandoned = fila { $row }: sigue sin respuesta { $limit } después de enviada; se abandona la solicitud
dispatch-late-answer = fila { $row }: la respuesta llegó después del tiempo límite: { $status }
progress-sending = enviando
progress-waiting-window = esperando el horario de contacto ({ $when })

## La barra de progreso y, sin terminal, las líneas de progreso.
progress-tally = enviadas { $sent }, fallidas { $failed }
progress-left = , faltan unos { $time }
progress-line = progreso: { $done }/{ $total } filas, { $tally }{ $eta }
progress-bar-eta = {"{"}msg{"}"} [{"{"}bar:30{"}"}] {"{"}pos{"}"}/{"{"}len{"}"} filas  {"{"}prefix{"}"}  {"{"}rate{"}"}  tiempo restante {"{"}eta{"}"}
progress-bar = {"{"}msg{"}"} [{"{"}bar:30{"}"}] {"{"}pos{"}"}/{"{"}len{"}"} filas  {"{"}prefix{"}"}

## Qué hacer ante un rechazo.
fix-24-hour-window = la ventana de 24 horas está cerrada: envíe primero a estas personas la plantilla HSM (send --hsm PLANTILLA); un mensaje libre solo les llega después de que la respondan
fix-parameter-missing = falta un parámetro: revise las columnas de la lista y api.connector_id en la configuración, y luego envíe estas filas como una lista nueva
fix-connector = revise el conector: api.connector_id en la configuración, o la columna connector_id
api-bad-retry-after = el servidor envió Retry-After { $value }, que no es ni un número entero de segundos ni una fecha HTTP: se ignora y se espera el tiempo usual entre reintentos
api-client = no se puede preparar el cliente HTTP: { $error }

## Tokens y el cupo de hoy.
token-none = no hay token: defina la variable de entorno { $variable } (varios tokens separados por comas); los tokens nunca se aceptan como opciones de la línea de comandos
token-bad = el token n.º { $index } de { $variable } { $reason }
token-bad-characters = tiene espacios, caracteres de control o caracteres no ASCII, que no pueden ir en un encabezado HTTP
token-not-utf8 = no es UTF-8 válido
token-name = token n.º { $index }
quota-too-small = el cupo de hoy permite { $fits ->
        [one] 1 solicitud más
       *[other] { $fits } solicitudes más
    } con { $tokens ->
        [one] 1 token
       *[other] { $tokens } tokens
    }, pero hay { $rows } filas por enviar: no se envió nada. Envíe hoy las primeras { $fits } con --partial (el resto queda como not_sent; continúe mañana con --resume), o agregue tokens a WOLKVOX_TOKEN (separados por comas; cada uno tiene licencias x 1000 llamadas al día). --no-quota-check omite esta revisión
quota-no-token = ningún token puede enviar hoy ({ $detail }): no se envió nada
quota-check-failed = falló la revisión del cupo: { $error }
quota-token-spent = a { $token } no le quedan llamadas hoy (límite { $limit }, usadas { $used }): no se usa en esta ejecución
quota-why-spent = el cupo de hoy está gastado
quota-why-invalid = no válido, vencido o mal escrito
quota-why-missing = Wolkvox no lo recibió
quota-token-left = { $token }: quedan { $left } llamadas hoy (límite { $limit }, usadas { $used })
quota-token-refused = token_info rechazó { $token } ({ $answer }): { $why }; no se usa en esta ejecución
quota-unknown = no se puede leer el cupo de hoy de { $token } ({ $why }); se envía de todos modos: si el cupo se acaba, el token se retira y el resto queda como not_sent
quota-enough = el cupo de hoy permite { $left } solicitudes más con { $tokens ->
        [one] 1 token
       *[other] { $tokens } tokens
    }: alcanza para las { $rows } filas
quota-partial = el cupo de hoy permite { $left } solicitudes más con { $tokens ->
        [one] 1 token
       *[other] { $tokens } tokens
    }: se envían las primeras { $fits } de { $rows } filas (--partial)

## report.
campaign-hsm-named = plantilla HSM { $name }
campaign-hsm-column = plantillas HSM indicadas en la columna template_name
campaign-with-variables = { $name } con las variables { $vars }
campaign-rendered = mensajes armados con { $template }
campaign-rendered-unnamed = mensajes armados con una plantilla
campaign-free = mensajes libres de la columna message
report-rows-to-fix = filas por corregir: { $rows } filas (invalid, failed o not_sent) escritas en { $path }
report-next-dry-run = este es el archivo de una simulación: no se envió nada; esto envía las { $rows } filas registradas como dry_run
report-next-never-attempted = las { $rows } filas que nunca se intentaron
report-next-not-sent = las { $rows } filas no enviadas (not_sent)
report-next-failed = de nuevo las { $rows } filas fallidas (failed)
report-next-unknown = de nuevo las { $rows } filas desconocidas (unknown) (puede que ya se hayan entregado: revise antes de enviarlas dos veces)
report-next-sends = envía { $parts }
report-next-and = , y{" "}
report-heading = informe de { $results } ({ $rows ->
        [one] 1 fila
       *[other] { $rows } filas
    })
report-campaign = campaña: { $campaign }
report-in-progress-of = en curso: una ejecución está enviando ahora mismo; { $rows } de { $total } filas registradas hasta ahora (ejecute report de nuevo cuando termine)
report-never-attempted = { $rows } de { $total } filas registradas; { $never } nunca se intentaron (la ejecución se detuvo antes de llegar a ellas)
report-in-progress = en curso: una ejecución está enviando ahora mismo (ejecute report de nuevo cuando termine)
report-failures = fallos (failed y unknown) por código y msg, los más comunes primero:
report-no-code = sin código
report-code = código { $code }
report-failed-and-unknown = { $failed } fallidas, { $unknown } desconocidas
report-rows = filas { $rows }
report-not-sent = no enviadas
report-suppressed = omitidas por lista de exclusión
report-invalid = filas no válidas: el motivo de cada una está en la columna Motivo del libro de Excel (en la columna msg del archivo de resultados, para programas), o ejecute `wolkvox-dispatch validate` sobre la lista
report-first-answer = primera respuesta
report-last-answer = última respuesta
report-rate = ritmo
report-rate-value = { $rate } mensajes/s (filas enviadas en ese tiempo, pausas entre ejecuciones incluidas)
report-rate-single = - (un solo momento)
report-no-answer = no se registró ninguna respuesta de Wolkvox
report-no-request = no se envió ninguna solicitud a Wolkvox
report-cannot-fix = filas fallidas que un nuevo envío no puede arreglar:
report-reconcile-first = puede que las filas unknown se hayan entregado: resuélvalas primero con el informe de mensajes enviados de Wolkvox:
report-no-rows = aún no hay filas registradas
report-nothing-left = no queda nada por enviar: cada fila está enviada, excluida, no válida o duplicada
report-next = siguiente paso: { $command }
report-replace-placeholder = Reemplace { $placeholder } por la lista de contactos de la que salió este archivo de resultados.
report-add-options = Agregue las opciones --config y --suppress de la ejecución original: el horario de contacto y las listas de exclusión no se guardan en el archivo de resultados (las filas registradas como suppressed siguen excluidas).

## El archivo de configuración y las opciones.
config-read = no se puede leer el archivo de configuración { $path }: { $error }
config-parse = archivo de configuración { $path }: { $message }
config-key = archivo de configuración { $path }: clave `{ $key }`: { $reason }
config-template-file = no se puede leer el archivo de plantilla { $path } (--template): { $error }
config-no-endpoint = no hay servidor de Wolkvox configurado: defina `api.server` (p. ej. "0042") o `api.base_url` en el archivo de configuración, o use --base-url
config-not-empty = no debe estar vacío
config-not-a-duration = { $text } no es una duración ({ $error }); escríbala como "60s", "500ms" o "2m"
config-at-least-one = debe ser al menos 1
config-connector-empty = no debe estar vacío (quite la clave para exigir una columna connector_id)
config-template-name-empty = no debe estar vacío: escriba el nombre de una plantilla aprobada (p. ej. cita_recordatorio)
config-variable-no-column = la variable { $index } no tiene nombre de columna: liste las columnas en el orden de la plantilla, p. ej. nombre,fecha,hora
config-not-a-delimiter = { $value } no es un separador: { $delimiters }
config-encoding = { $value } no se admite: use "auto", "utf-8" o "windows-1252"
config-file-empty = { $file } está vacío
config-country = { $value } no es un código de país: use el código ISO 3166 de dos letras, p. ej. "CO", "MX", "ES"
config-settle-after = { $value } no es una duración: escríbala como "30m", "2h" o "0s"
config-timezone-required = es obligatoria con campaign.hours o campaign.holidays: escriba la zona horaria IANA de los destinatarios, como "America/Bogota"
config-server-id = { $value } no es un id de servidor de Wolkvox: use solo letras y dígitos, como lo da el soporte de Wolkvox (p. ej. "0042" para wv0042.wolkvox.com)
config-url-credentials = no debe llevar usuario ni contraseña (la parte antes de `@`): quítelos; el token va en la variable de entorno WOLKVOX_TOKEN
config-url-invalid = { $url } no es una URL ({ $error }); escríbala como https://wv0042.wolkvox.com
config-url-scheme = { $url } debe empezar por https:// o http://
config-no-hours-to-wait = no hay horario de contacto que esperar: defina campaign.hours (y campaign.timezone) en el archivo de configuración
config-limit-zero = debe ser al menos 1 (para no enviar nada, use --dry-run)
config-timeout-short = { $value } es muy poco: una solicitud necesita tiempo para llegar a Wolkvox y volver; use al menos 1s (el predeterminado es 60s, el límite de la propia API)
config-rate = { $value } no es un ritmo utilizable: indique solicitudes por segundo por token, al menos una al día ({ $min })
config-in-flight = { $value } no está permitido: la API de Wolkvox acepta como máximo { $max } solicitudes simultáneas por token; use 1 o 2
config-max-delay = no debe ser menor que retry.base_delay

## El horario de contacto en el archivo de configuración (los días se escriben en inglés: mon..sun).
hours-empty = está vacío: escriba el horario como "mon-fri 07:00-19:00, sat 08:00-15:00", o quite la clave para enviar a cualquier hora
hours-empty-entry = { $spec } tiene una entrada vacía entre comas; las entradas se escriben como "mon-fri 07:00-19:00"
hours-needs-days = la entrada { $entry } necesita días y horas, como "mon-fri 07:00-19:00"
hours-not-a-day = entrada { $entry }: { $name } no es un día; use { $days }
hours-backwards = entrada { $entry }: el rango de días { $text } va hacia atrás; los rangos van de mon a sun (escriba p. ej. "sat-sun" y "mon" como entradas separadas)
hours-not-a-range = entrada { $entry }: { $text } no es un rango de horas; escríbalo como 07:00-19:00
hours-starts-at-24 = entrada { $entry }: un rango no puede empezar a las 24:00; use las 00:00 del día siguiente
hours-crosses-midnight = entrada { $entry }: { $text } pasa de la medianoche, lo que no se admite; pártalo en la medianoche, como "fri 22:00-24:00, sat 00:00-02:00"
hours-empty-range = entrada { $entry }: { $text } está vacío (termina cuando empieza)
hours-not-a-time = entrada { $entry }: { $text } no es una hora; escriba HH:MM (00:00 a 24:00) o HH:MM:SS
hours-no-day = no abre ningún día
timezone-empty = está vacía: escriba el nombre de una zona horaria IANA, como "America/Bogota"
timezone-unknown = { $name } no es una zona horaria IANA conocida; escriba un nombre como "America/Bogota", "America/Mexico_City" o "Europe/Madrid"
holiday-not-a-date = { $text } no es una fecha; escríbala como AAAA-MM-DD, como "2026-12-08"
config-delimiters = use ",", ";", "tab" o "|"

## El archivo de resultados y su diario.
results-already-exists = { $path } ya existe: esta lista ya se envió (o se envió en parte). Para continuar esa ejecución, agregue --resume; para enviarla de nuevo desde cero, mueva antes a otra parte el archivo de resultados y su .journal
results-not-a-dry-run = { $path } es el archivo de resultados de un envío real, no de una simulación: elija otro archivo con --results
results-locked = otra ejecución de wolkvox-dispatch está usando { $path } en este momento; espere a que termine (dos ejecuciones sobre un mismo archivo de resultados podrían enviar mensajes dos veces)
results-no-journal = { $results } existe pero falta su diario { $journal }, así que no se puede saber qué filas ya se intentaron; restaure el diario, o envíe las filas restantes como una lista nueva
results-bad-journal = { $path }, línea { $line }: el diario está dañado ({ $message }); no se puede continuar con seguridad
results-read = no se puede leer { $path }: { $message }
results-disagree = { $journal } parece dañado (vaciado, cortado, lleno de ceros o de otra lista): no registra la fila { $row } ({ $telephone }) como { $status }, como sí lo hace { $results }, así que continuar podría enviar mensajes dos veces. No se envió nada. Restaure el diario desde una copia de seguridad; o envíe solo las filas que { $results } no registra como sent, unknown o failed, como una lista nueva con su propio --results
results-other-list = { $path } es el archivo de resultados de otra lista, { $list }: elija otro archivo para esta con --results (por ejemplo { $suggestion })
results-symlink = { $path } es un enlace simbólico: el archivo de resultados y su diario deben ser archivos normales (un enlace podría hacer que esta ejecución escriba en otra parte); dé a --results una ruta normal
results-is-the-input = { $path } es la propia lista de entrada: escribir resultados allí la destruiría; elija otro archivo con --results
results-write = no se puede escribir { $path }: { $error }
results-unreadable-journal-alone = { $error }; se sigue solo por el diario
campaign-differs-kind = la ejecución registrada envía { $recorded }; este comando envía { $this }
campaign-differs-connector = el api.connector_id de la ejecución registrada es { $recorded }; el de este comando es { $this }
campaign-differs-list = los resultados pertenecen a otra lista, { $recorded }; este comando lee { $this }
campaign-not-set = sin definir
plan-suppressed-after-sent = fila { $row }: { $telephone } está en la lista de exclusión { $list }, pero una ejecución anterior ya registró este mensaje como { $status }; no se envía de nuevo
error-runtime = no se puede iniciar el entorno de ejecución asíncrono: { $error }
error-other-campaign = { $results } registra otra campaña: { $differences }. No se envió nada. Para continuar la ejecución registrada, ejecute: { $command }
    Para enviar esta en su lugar, dele su propio archivo de resultados con --results

## reconcile.
reconcile-refused = Wolkvox rechazó la llamada del informe (HTTP { $status } { $msg }): revise el token (necesita acceso a informes) y el cupo de hoy; no se cambió nada
reconcile-unreadable = no se puede leer el informe de Wolkvox ({ $why }); no se cambió nada
answer-not-json = la respuesta (HTTP { $status }) no es JSON: { $excerpt }
reconcile-no-messages = la respuesta no lista ningún mensaje con teléfono y mensaje
reconcile-undecided-template = una plantilla HSM (o un diario demasiado antiguo para saberlo): no se sabe que el informe de Wolkvox liste el texto de una plantilla, así que no puede confirmarla
reconcile-undecided-cut = el informe llegó a su límite de 60.000 registros, así que un mensaje que falte en él puede haber quedado solo por fuera del corte
reconcile-nothing = { $results }: no hay filas unknown: no hay nada que conciliar
reconcile-totals = { $rows } filas unknown: { $sent } confirmadas como enviadas, { $not_sent } no enviadas, { $left } siguen desconocidas
reconcile-dry-run = simulación: el archivo de resultados no se cambió
reconcile-next-sends = envía las { $rows } filas no enviadas (not_sent), una vez cada una.
reconcile-row-sent = enviada: aparece en el informe de Wolkvox, registrada { $date }
reconcile-row-not-sent = no enviada: no aparece en el informe de Wolkvox
reconcile-row-too-recent = sigue desconocida: demasiado reciente para que su ausencia cuente; concilie de nuevo después de { $after }
reconcile-row-undecided = sigue desconocida: { $why }
reconcile-row = fila { $row }  { $telephone }  { $line }
reconcile-waiting = esperando hasta { $until } para la siguiente llamada a { $api }: Wolkvox pide como máximo una cada 5 minutos
reconcile-asking = consultando el informe de mensajes enviados de Wolkvox ({ $api }) del { $from } al { $to }
reconcile-workbook = libro de Excel reescrito: { $path }
reconcile-workbook-failed = los resultados quedaron conciliados, pero el libro de Excel no se reescribió: { $error }

## La revisión de las plantillas HSM.
templates-mismatch = las plantillas HSM de esta lista no coinciden con la cuenta, así que no se envió nada:
    { $problems }
    Corrija los nombres de plantilla, las variables (--hsm-vars / hsm.vars) o la columna url_attach, o use --no-template-check para enviar de todos modos
templates-unchecked = no se pueden revisar las plantillas HSM del conector { $connector }: { $why }; se envía sin la revisión
templates-what = plantilla { $name } (conector { $connector }, { $rows ->
        [one] 1 fila
       *[other] { $rows } filas
    })
templates-not-found = { $what }: no está entre las plantillas del conector; las aprobadas son: { $approved }
templates-not-approved = { $what }: su estado es { $status }, no APPROVED: Meta solo entrega plantillas aprobadas
templates-variables = { $what }: lleva { $takes } variables ({ $placeholders }), pero las filas { $rows } dan { $count }
templates-media = { $what }: tiene un encabezado de tipo { $media }, así que cada fila necesita un url_attach (una URL https pública del archivo), pero las filas { $rows } no lo tienen
templates-answered = Wolkvox respondió HTTP { $status } { $msg }
templates-no-list = la respuesta no tiene lista de plantillas (no hay `meta_templates`)

templates-none = ninguna
templates-and-more = {" "}y { $more } más
templates-uses = { $templates ->
        [one] 1 plantilla
       *[other] { $templates } plantillas
    } en { $connectors ->
        [one] 1 conector
       *[other] { $connectors } conectores
    }
preflight-checking = revisando { $uses } en la cuenta (list_templates)
preflight-no-token = WOLKVOX_TOKEN no está definido; defínalo para revisar las plantillas en la cuenta
preflight-no-server = ningún api.server (ni --base-url) dice dónde está la cuenta
preflight-skipped = revisión de plantillas: omitida: { $why }
preflight-passed = revisión de plantillas: { $uses } revisadas en la cuenta, { $confirmed } confirmadas

## send --test-to.
test-send-opted-out = { $to } está en la lista de exclusión { $list }: elija un número que acepte mensajes
test-send-no-valid-row = la lista no tiene ninguna fila válida para enviar como prueba; ejecute `wolkvox-dispatch validate` sobre ella
test-send-heading = envío de prueba: el mensaje de la fila { $row } (para { $list_phone } en la lista), enviado a { $to } en su lugar:
test-send-answer = respuesta de Wolkvox: { $verdict }: { $answer }
test-send-nothing-recorded = no se registró nada: el archivo de resultados y el diario de la campaña quedan intactos
test-send-accepted = aceptado
test-send-refused = rechazado
test-send-unclear = incierto (puede que se haya entregado)
test-send-not-taken = no recibido (revise el token y la dirección; intente de nuevo)
test-send-no-answer = sin respuesta dentro del tiempo límite (puede que se haya entregado)

config-url-query = { $url } no debe tener consulta ni fragmento: la herramienta agrega ella misma /api/v2/whatsapp.php?api=...

## Niveles del registro.
log-level-error = ERROR
log-level-warn = AVISO
log-level-info = INFO
log-level-debug = DEPURACIÓN
log-level-trace = TRAZA

## Lo que el archivo de resultados registra en el msg de una fila (siempre en inglés);
## report y el libro de Excel lo muestran así.
msg-interrupted = no enviado: la ejecución fue interrumpida
msg-quota-spent = no enviado: todos los tokens gastaron el cupo de hoy; se renueva mañana (continúe con --resume)
msg-tokens-refused = no enviado: todos los tokens fueron rechazados
msg-api-not-found = no enviado: la API no existe en la URL configurada
msg-redirected = no enviado: el servidor redirigió la solicitud (URL base o api.server equivocados)
msg-service-down = no enviado: el servicio parecía caído
msg-record-failed = no enviado: no se pudieron escribir los resultados
msg-window-closed = no enviado: fuera del horario de contacto; la ventana vuelve a abrir { $opens }
msg-window-never = no enviado: fuera del horario de contacto, que no vuelve a abrir en los próximos años
msg-same-refusal = no enviado: la ejecución se detuvo después de que { $rows } filas seguidas fueran rechazadas con la misma respuesta (--max-failures)
msg-pilot = no enviado: esta ejecución envió un lote piloto de { $limit } filas (--limit); el resto lo envía --resume
msg-partial = no enviado: el cupo de hoy no alcanzó para esta fila (--partial); se renueva mañana (continúe con --resume)
msg-templates-refused = las plantillas HSM no coinciden con la cuenta (vea el error de la ejecución); no se envió nada
msg-duplicate = mismo teléfono y mensaje que la fila { $row }
msg-interrupted-then-opted-out = una ejecución anterior se detuvo mientras enviaba este mensaje (entonces fila { $row }): puede que se haya entregado; el número está ahora en la lista de exclusión { $list }, así que nunca se vuelve a enviar
msg-opted-out = en la lista de exclusión { $list }: nunca se envía
msg-retry-unknown-sends = { $stopped }; --resume --retry-unknown lo envía de nuevo
msg-interrupted-earlier = una ejecución anterior se detuvo mientras enviaba este mensaje (entonces fila { $row }): puede que se haya entregado
msg-in-flight-journal = la ejecución se detuvo con esta solicitud en curso (diario): puede que se haya entregado
msg-in-flight-reconcile = la ejecución se detuvo con esta solicitud en curso: puede que se haya entregado; concilie de nuevo más tarde
msg-confirmed-sent = confirmado como enviado por el informe de Wolkvox ({ $api }): registrado { $date }; revisado { $checked }
msg-absent-from-report = no enviado: no aparece en el informe de mensajes enviados de Wolkvox ({ $api }) hasta { $until }, revisado { $checked } (resuelto después de { $after }); --resume lo envía una vez
msg-no-answer-within = sin respuesta en { $timeout } (api.timeout)
msg-gave-up = { $msg } (se desistió después de { $attempts } intentos)
msg-answered-late = { $msg } (respondido después del tiempo límite)
msg-not-sent-because = no enviado: { $why }

cli-options-placeholder = [OPCIONES]

cli-help-command = Muestra este mensaje o la ayuda del comando indicado

api-answer-not-json = la respuesta no es JSON
api-no-token-limit = la respuesta no tiene token_limit ni token_use_today (como números enteros)
api-token-not-a-header = el token no se puede enviar como encabezado HTTP

config-toml-at = error de TOML en la línea { $line }, columna { $column }
config-toml-or = {" "}o{" "}
config-toml-unknown-key = clave desconocida { $key }; las claves posibles son: { $expected }
config-toml-unknown-value = valor desconocido { $value }; se esperaba { $expected }
config-toml-invalid-type = tipo de valor equivocado: { $found }; se esperaba { $expected }
config-toml-missing-key = falta la clave { $key }

# issue 30
cli-init-about = Escribe un primer archivo de configuración comentado (wolkvox.toml) en su idioma, preguntando el servidor, el conector de WhatsApp y el país
cli-init-file = El archivo de configuración que se escribe; un archivo que ya existe nunca se reemplaza
cli-init-server = Su servidor de Wolkvox: los dígitos de su dirección https://wv0042.wolkvox.com (aquí 0042)
cli-init-connector-id = El id del conector de WhatsApp de la línea que envía (en wolkvox Manager, entre los conectores de la operación)
cli-init-country = El país de los números escritos sin código de país: un código ISO de dos letras como CO, MX, EC
init-ask-server =
    Su servidor de Wolkvox: los dígitos de la dirección en que abre Wolkvox, https://wv0042.wolkvox.com (aquí 0042). Se lo da el soporte de Wolkvox.
    Servidor (vacío: lo escribe después)
init-ask-connector =
    El id del conector de WhatsApp: el número del conector de WhatsApp de la línea que envía, tal como aparece entre los conectores de la operación en wolkvox Manager (la API information.php?api=connectors también lo da, canal "whatsapp"). Pregúntele al administrador de Wolkvox si no lo ve.
    Id del conector (vacío: la lista tiene una columna connector_id)
init-ask-country =
    El país de los números escritos sin código de país (300 123 4567 es un celular colombiano con CO): un código ISO de dos letras como CO, MX, EC, PE.
    País (vacío: todos los números llevan su código de país)
init-exists = { $file } ya existe y se deja como está: edítelo, o dé otro nombre (wolkvox-dispatch init otro.toml)
init-write = no se puede escribir { $file }: { $error }
init-bad-flag = { $flag }: { $reason }
init-bad-answer = la respuesta para { $key } no sirve: { $reason }. Désela con { $flag }, o deje la respuesta vacía para escribirla después
init-written = Se escribió { $file }.
init-fill-in = Quedan para después, comentadas en él: { $missing } (un envío real necesita api.server).
init-next =
    Ahora revise una lista con él (no se envía nada):
      wolkvox-dispatch validate LISTA.xlsx --config { $file }
      wolkvox-dispatch send LISTA.xlsx --config { $file } --dry-run
init-file-header =
    Configuración de wolkvox-dispatch, escrita por `wolkvox-dispatch init`.
    Úsela así: wolkvox-dispatch send LISTA.xlsx --config { $file }
    Los tokens nunca van en este archivo: póngalos en la variable de entorno WOLKVOX_TOKEN.
    Las demás claves, con sus valores por defecto, se explican en config.example.es.toml.
init-file-server =
    Su servidor de Wolkvox, que le da el soporte de Wolkvox: "0042" quiere decir
    https://wv0042.wolkvox.com. Se necesita para enviar (no para validate ni --dry-run).
init-file-connector =
    El id del conector de WhatsApp de la línea que envía, para las filas sin
    columna o celda connector_id. Aparece entre los conectores de la operación
    en wolkvox Manager (y en la API information.php?api=connectors).
init-file-country =
    El país de los números escritos sin código de país: con "CO",
    "300 123 4567" se envía como 573001234567.
init-file-timezone =
    La zona horaria de los destinatarios: las horas se muestran en ella, y el
    horario de contacto (hours = "mon-fri 07:00-19:00") la necesita. Por defecto: la de este equipo.
init-file-lang =
    El idioma de todo lo que se escribe para una persona: "es" o "en".
init-file-unset = Aún sin valor: quite el "#" y escriba el valor.
summary-workbook = para abrir en Excel: { $path }
summary-for-programs = para programas (CSV): { $path }
report-workbook = para abrir en Excel: { $path }
report-no-workbook = no hay libro de Excel junto a él: `wolkvox-dispatch report { $results } --xlsx { $path }` lo escribe
when-this-year = { $weekday } { $day } de { $month }, { $time }
when-other-year = { $weekday } { $day } de { $month } de { $year }, { $time }
when-monday = lunes
when-tuesday = martes
when-wednesday = miércoles
when-thursday = jueves
when-friday = viernes
when-saturday = sábado
when-sunday = domingo
when-january = enero
when-february = febrero
when-march = marzo
when-april = abril
when-may = mayo
when-june = junio
when-july = julio
when-august = agosto
when-september = septiembre
when-october = octubre
when-november = noviembre
when-december = diciembre
## Las respuestas usuales de Wolkvox y las descripciones propias de una respuesta, como
## las registra el archivo de resultados (patrones `msg-`): report y el libro de Excel
## las muestran en el idioma del lector; se registran tal cual.
msg-wolkvox-sent = Wolkvox aceptó el mensaje
msg-wolkvox-bad-request = SOLICITUD INCORRECTA
msg-wolkvox-forbidden = PROHIBIDO
msg-wolkvox-unauthorized = NO AUTORIZADO
msg-wolkvox-parameters = FALTAN PARÁMETROS
msg-wolkvox-no-api = LA API QUE QUIERE CONSULTAR NO EXISTE
msg-wolkvox-enter-token = INGRESE EL WOLKVOX-TOKEN
msg-wolkvox-token-limit = LÍMITE DIARIO DEL TOKEN SUPERADO
msg-wolkvox-simultaneous = SUPERA EL LÍMITE DE SOLICITUDES SIMULTÁNEAS POR TOKEN (2)
msg-wolkvox-validate-token = VALIDE EL TOKEN
msg-answer-server-error = HTTP { $status }: error del servidor; puede haberse entregado
msg-answer-not-json = la respuesta no es JSON
msg-answer-redirect = HTTP { $status }: redirección
msg-answer-says-taken = HTTP { $status } con una respuesta que dice { $code }: puede haberse entregado
msg-answer-no-code = la respuesta no tiene un código utilizable
msg-answer-connection-lost = se perdió la conexión mientras se leía la respuesta
msg-answer-token-header = el token no se puede enviar como encabezado HTTP
list-set-default-country = { $rows } de { $seen } filas tienen teléfonos que no son números internacionales válidos: si la lista trae números nacionales (300 123 4567, sin indicativo de país), ponga [phone] default_country = "CO" (su país) en el archivo de configuración (`wolkvox-dispatch init` escribe uno) y revise de nuevo
config-toml-quote-text = un texto va entre comillas, p. ej. default_country = "CO"
config-toml-leading-zero = un número no puede empezar con 0: un id como el del servidor va entre comillas, p. ej. server = "0042"
config-toml-unclosed = falta cerrar un corchete [: cierre con ] el nombre de la sección o la lista
config-toml-unclosed-string = falta cerrar un texto: termínelo con las mismas comillas con que empieza, en la misma línea
config-toml-syntax = esta línea no es TOML válido: revise sus comillas, sus corchetes y su signo =
# issue 29
input-file-and-sheet = { $path }, hoja { $sheet }
input-other-sheets = { $path }: se lee la hoja { $sheet }; otras hojas con datos: { $others } (elija otra con --sheet)
row-cell-error = la celda muestra el error { $error }: corrija la fórmula o el valor en la hoja de cálculo
config-locale = { $value } no es una configuración regional para números y fechas: use "es-CO", "es-ES", "es-MX" o "en-US"
phone-two-numbers = { $shown } tiene dos números en una celda: ponga un número por fila (copie la fila para el segundo número)
phone-mexico-one = { $shown } es una forma antigua de celular mexicano: quite el 1 después de +52 (desde 2019 un número de México es +52 y 10 dígitos, p. ej. +52 55 1234 5678)
phone-mexico-prefix = { $shown } es una forma antigua de celular mexicano: quite el { $prefix } antes de los 10 dígitos (desde 2019 un número de México es +52 y 10 dígitos, p. ej. +52 55 1234 5678)
cli-arg-header-row = El número de la fila de encabezados, como lo muestra la hoja de cálculo; las filas de arriba se ignoran [config: columns.header_row, predeterminado: la primera de las primeras 20 filas con la columna del teléfono]
input-rows-above-header = { $path }: los encabezados están en la fila { $row }: se ignoran las filas de arriba ({ $rows } con contenido)
input-no-header-row = { $path }: no hay fila { $row } (--header-row, columns.header_row): la última fila con contenido es la { $last }
report-rows-as-recorded = no se encontró la lista de contactos de { $results }, o no se pudo leer entera: las filas se nombran como las numera el archivo de resultados (1 = la primera fila bajo los encabezados), no como la hoja de cálculo
# issue 28
setting-certificate = este equipo no confía en el certificado del servidor ({ $detail }). Si su empresa inspecciona HTTPS con su propia autoridad de certificación, pida a TI el certificado de esa CA (un archivo .pem o .crt) y apunte SSL_CERT_FILE a él (o SSL_CERT_DIR a su carpeta), o agréguelo al almacén de certificados del sistema; no salió ningún mensaje
setting-certificate-name = el certificado presentado para { $origin } es de otro nombre ({ $detail }): revise --base-url (o api.server / api.base_url en la configuración); detrás de una inspección TLS, pida a TI que corrija el certificado del proxy; no salió ningún mensaje
setting-proxy-auth = el proxy rechazó las credenciales (407 Proxy Authentication Required): defina HTTPS_PROXY=http://usuario:contraseña@proxy:puerto con el usuario y la contraseña correctos (los caracteres especiales de la contraseña codificados con %, un espacio como %20); no salió ningún mensaje
setting-proxy-unreachable = no se puede llegar al proxy ({ $detail }): revise el host y el puerto en HTTPS_PROXY / HTTP_PROXY / ALL_PROXY; no salió ningún mensaje
setting-unknown-host = el host de { $origin } no existe ({ $detail }): revise --base-url, o api.server en la configuración (el id que le dio Wolkvox, como en wv0042); no salió ningún mensaje
msg-setting-certificate = no enviado: este equipo no confía en el certificado del servidor (vea SSL_CERT_FILE)
msg-setting-certificate-name = no enviado: el certificado del servidor es de otro nombre (revise --base-url)
msg-setting-proxy-auth = no enviado: el proxy rechazó las credenciales (407)
msg-setting-proxy-unreachable = no enviado: no se puede llegar al proxy
msg-setting-unknown-host = no enviado: el host no existe (revise --base-url)
dispatch-slowing-down = el servidor respondió 429 (demasiadas solicitudes): el token { $token } baja a { $rate } solicitudes/s
proxy-variable = la variable de proxy { $variable } no se puede usar: { $reason }. Escríbala como http://usuario:contraseña@host:puerto (los caracteres especiales del usuario o la contraseña codificados con %: un espacio como %20, @ como %40), o quítela
proxy-not-text = no es texto válido
proxy-not-url = no es una URL que el cliente HTTP pueda leer (¿un espacio, un host o un puerto mal escritos?)
proxy-scheme = los proxies { $scheme }:// no se admiten (solo http:// y https://)
proxy-no-host = no tiene host
setting-proxy-refused = el proxy se negó a abrir una conexión a { $origin } sin decir por qué: revise el usuario y la contraseña en HTTPS_PROXY (tinyproxy responde así a una contraseña equivocada), y pregunte a TI si el proxy deja pasar este host y puerto; no salió ningún mensaje
msg-setting-proxy-refused = no enviado: el proxy rechazó la conexión (revise HTTPS_PROXY)
# issue 26
reconcile-refused-in-body = Wolkvox rechazó la llamada del informe (código { $code } en una respuesta HTTP 200: { $msg }): revise el token (necesita acceso a informes) y el cupo de hoy; no se cambió nada
reconcile-code-unreadable = el código { $code } de la respuesta no es un número
reconcile-undecided-paginated = el informe tiene más páginas que esta respuesta (la herramienta lee una), así que un mensaje que falte en ella puede estar en otra página
reconcile-undecided-unreadable = el informe tiene un registro que no se puede leer (sin teléfono, texto o fecha), que puede ser este mensaje
reconcile-undecided-no-own-sent = el informe no lista ninguna de las filas enviadas de esta campaña en el periodo, así que no muestra que cubra esta campaña
reconcile-undecided-own-sent-missing = el informe no lista { $rows } de las filas enviadas de esta campaña, así que también puede faltarle esta
reconcile-undecided-before = el informe lista este mensaje solo el { $date }, antes del intento: un mensaje anterior, o un informe en otra zona horaria
output-clash = { $output } ({ $output_role }) es { $other } ({ $other_role }): escribirlo reemplazaría ese archivo; elija otro nombre de archivo. No se escribió nada
file-role-list = la lista
file-role-config = el archivo de configuración
file-role-template = el archivo de plantilla
file-role-suppress = una lista de exclusión
file-role-results = el archivo de resultados
file-role-journal = el diario de los resultados
file-role-workbook = el libro de Excel de los resultados
file-role-summary-json = --summary-json
file-role-xlsx = --xlsx
file-role-rows-to-fix = --rows-to-fix
send-stop-pilot-kept = el lote piloto está enviado (--limit { $limit }); de las otras { $rows } filas, { $not_sent } quedan registradas como not_sent y { $kept } conservan su estado anterior (unknown o failed): revise los resultados del piloto y luego envíe el resto
send-stop-quota-kept = el cupo de hoy no alcanzó para { $rows } filas (--partial): { $not_sent } quedan registradas como not_sent y { $kept } conservan su estado anterior (unknown o failed); el cupo se renueva mañana
reconcile-undecided-ambiguous-phone = el informe lista este texto el { $date } a un número sin indicativo de país que también es otro de los números de esta campaña, así que puede ser de cualquiera de los dos
# issue 27
status-meaning-held = No enviada: el registro de envíos muestra que esta persona ya recibió este mensaje dentro de `[ledger] repeat_window`, en cualquier archivo de resultados (o suficientes mensajes, `[ledger] max_per_phone`); `msg` dice cuándo y dónde. `--allow-repeat` la envía.
status-label-held = Retenida (ya enviada)
status-word-held = retenidas
ledger-error = no se puede usar el registro de envíos { $path }: { $problem }. No se envió nada, y el diario y los resultados quedan como estaban. Corríjalo y ejecute de nuevo el mismo comando, o añada --no-ledger: esa ejecución no consulta ni anota lo que enviaron otras ejecuciones y otros archivos de resultados, así que una persona podría recibir dos veces el mismo mensaje.
ledger-no-place = no hay carpeta para el registro de envíos (ni carpeta personal ni de estado): indique una con --ledger RUTA o [ledger] path, o añada --no-ledger (entonces nada impide que vuelva a salir un mensaje que otra ejecución ya envió). No se envió nada.
ledger-problem-locked = otra ejecución o programa lo tiene bloqueado (se esperó hasta { $seconds } s)
ledger-problem-corrupt = está dañado (no es un registro legible); muévalo a otro lugar para empezar uno nuevo
ledger-problem-full = el disco está lleno
ledger-problem-cannot-open = no se puede abrir ni escribir ({ $error })
ledger-problem-other = { $error }
ledger-problem-newer = lo escribió una versión más nueva de wolkvox-dispatch (esquema { $version }): actualice la herramienta
ledger-cap-invalid = { $value } no es un límite de frecuencia: escriba CANTIDAD/PERIODO, por ejemplo "2/24h"
ledger-already-sent = esta lista ya se envió: { $held } de sus { $valid } filas válidas recibieron el mismo mensaje el { $when } (resultados { $results }). No se envió nada (código 2). Para enviarla otra vez a propósito, añada --allow-repeat; `wolkvox-dispatch history --since 7d` lista lo que salió.
msg-held-repeat = retenida: el mismo mensaje salió a este número el { $when } ({ $status }, resultados { $results }, fila { $row }); --allow-repeat lo envía otra vez
msg-held-cap = retenida: este número ya recibió { $count } mensajes en { $per } ([ledger] max_per_phone), el último el { $when } (resultados { $results }); --allow-repeat lo envía
msg-held-changed = retenida: el texto de esta fila cambió desde que se envió la fila { $row } a este número el { $when } (texto enviado: { $excerpt }); --resume --resend-changed envía el texto nuevo
msg-kept = { $earlier }; ahora { $now }
send-held = { $rows ->
        [one] 1 fila retenida: el registro de envíos muestra que ya salió (vea su msg); --allow-repeat, o --resend-changed con --resume, la envía a propósito
       *[other] { $rows } filas retenidas: el registro de envíos muestra que ya salieron (vea su msg); --allow-repeat, o --resend-changed con --resume, las envía a propósito
    }
validate-held = fila { $row }: retenida: { $why }
send-held = { $rows } filas retenidas: el registro de envíos muestra que ya salieron (vea su msg); --allow-repeat, o --resend-changed con --resume, las envía a propósito
validate-held = fila { $row }: { $why }
validate-held-totals = { $rows } de las filas válidas quedarían retenidas (el registro de envíos muestra que ya salieron)
cli-arg-ledger = El registro de envíos (SQLite) [config: ledger.path; por defecto, la carpeta de estado del usuario, p. ej. ~/.local/state/wolkvox-dispatch/ledger.sqlite3]
cli-arg-no-ledger = No consultar ni anotar el registro de envíos: un mensaje que otra ejecución u otro archivo de resultados ya envió podría salir otra vez
cli-send-allow-repeat = Enviar las filas que el registro retiene porque el mismo mensaje ya salió (dentro de ledger.repeat_window) o el número llegó a ledger.max_per_phone
cli-send-resend-changed = Con --resume: enviar las filas cuyo texto cambió desde que esta campaña envió un mensaje a su número
cli-history-about = Lo que sabe el registro de envíos: `history TELÉFONO`, `history --since 7d`, `history import RESULTADOS...` (cargarlo desde archivos de resultados), `history forget TELÉFONO` (borrar a una persona)
cli-history-words = TELÉFONO; o `import` RESULTADOS...; o `forget` TELÉFONO
cli-history-since = Solo los mensajes de la última DURACIÓN (p. ej. 7d) [por defecto: todo para un TELÉFONO, 7d para todos]
cli-history-format = Formato de salida: text para personas, json o csv para programas
cli-history-config = Archivo de configuración TOML: ledger.path, campaign.timezone, phone.default_country
history-none = El registro de envíos { $path } no tiene nada para { $what }.
history-everyone = todos desde { $since }
history-line = { $when }  { $telephone }  { $status }  { $kind }  { $excerpt }  ({ $results }, fila { $row })
history-imported = { $added } mensajes añadidos al registro de envíos desde { $files } archivos de resultados ({ $known } ya conocidos).
history-forgotten = { $count } mensajes a { $telephone } borrados del registro de envíos { $path }.
history-no-phone = indique el teléfono: `history forget TELÉFONO`
history-no-results = indique al menos un archivo de resultados: `history import RESULTADOS...`
history-bad-phone = { $phone } no es un número al que esta herramienta pueda enviar: { $reason }
history-bad-since = --since { $value }: { $error }
history-import-unreadable = no se puede importar { $path }: { $error }
report-went-out-rows-gone = { $count } mensajes más salieron en esta campaña de los que muestran sus filas (filas borradas de la lista, un teléfono cambiado, o un texto anterior a --resend-changed): el diario los registra, y `wolkvox-dispatch history` los lista

# newcomer fixes
report-not-delivered = { $rows ->
        [one] 1 fila no se entregó: Wolkvox la rechazó (failed) y, si se envía de nuevo sin cambios, la rechazará otra vez. Corrija la causa indicada arriba y luego envíela con:
       *[other] { $rows } filas no se entregaron: Wolkvox las rechazó (failed) y, si se envían de nuevo sin cambios, las rechazará otra vez. Corrija la causa indicada arriba y luego envíelas con:
    }
summary-next-report = Siguiente paso: { $command } dice por qué no se entregó cada fila y qué lo corrige
summary-next-retry = Una vez corregida la causa, esto envía de nuevo las filas fallidas: { $command }
workbook-sheet-to-fix = Por corregir
list-finish-when = terminaría hacia el { $finish }{ $later }
cli-validate-allow-duplicates = Cuenta como válida cada copia de un mismo teléfono + mensaje (send con esta opción enviaría cada una), en lugar de señalar las copias siguientes como `duplicate` [config: input.allow_duplicates]

# outputs never state files
file-role-ledger = el registro de envíos
# ledger identity
ledger-keep-too-short = { $keep } es menos que repeat_window ({ $window }): la depuración borraría el registro de mensajes que aún deben retener una repetición. Dé a [ledger] keep al menos la ventana de repetición, u omítalo para conservarlo todo
ledger-problem-empty = está vacío (0 bytes): un registro que hizo esta herramienta nunca está vacío, así que lo más probable es que lo vaciaran o cortaran, y lo que anotaba se perdió. Restáurelo desde una copia de seguridad; o, sabiendo que entonces los mensajes enviados antes no se retienen, muévalo a otro lugar para empezar uno nuevo
ledger-already-claimed = esta lista está reservada por una ejecución que no terminó (o sigue en curso): { $held } de sus { $valid } filas válidas tienen el mismo mensaje reservado el { $when } (resultados { $results }), que pudo haber salido. No se envió nada (código 2). Reanude esa ejecución con --resume (su archivo de resultados) para asentarlos; para enviar esta lista de todos modos, añada --allow-repeat.
msg-held-claimed = retenida: el mismo mensaje a este número quedó reservado el { $when } por una ejecución que no terminó o sigue en curso (resultados { $results }, fila { $row }), y pudo haber salido; el --resume de esa ejecución lo asienta; --allow-repeat lo envía otra vez
ledger-settle-failed = no se pudo anotar en el registro de envíos { $path } cómo terminaron los mensajes de esta ejecución: { $problem }. Los que envió siguen reservados (pending), lo que los retiene para otras ejecuciones; la próxima ejecución de esta campaña (--resume) los anota a partir de su diario.
# ledger follow-ups
msg-held-changed-text-unknown = no se conoce: el registro de envíos estaba desactivado (--no-ledger) y el diario no guarda textos
ledger-files-more = { $files } y { $more } más
ledger-period-days = { $n ->
    [one] 1 día
   *[other] { $n } días
    }
ledger-period-hours = { $n ->
    [one] 1 hora
   *[other] { $n } horas
    }
ledger-period-minutes = { $n ->
    [one] 1 minuto
   *[other] { $n } minutos
    }
send-held-changed = { $rows } filas quedan retenidas: su texto cambió desde que esta campaña envió un mensaje a su número, y el texto nuevo no se envía (vea su msg: cuándo, qué fila, el texto enviado). Para enviar los textos nuevos a propósito: el mismo comando con --resume --resend-changed
summary-held-changed = cambiadas
summary-held-changed-why = (retenidas: el texto cambió, y su número ya recibió el texto anterior de esta campaña; --resume --resend-changed envía el nuevo)

# issue 31
msg-answer-connect-failed = la conexión falló
msg-answer-timeout = tiempo agotado
msg-answer-dropped = se perdió la conexión
msg-answer-redirected-to = redirigido a { $location }
msg-answer-redirected-nowhere = redirigido (sin cabecera Location)
journal-line-no-checksum = sin suma de control
journal-line-checksum-mismatch = la suma de control no coincide
journal-line-not-an-event = no es un evento: { $why }
msg-retried = { $earlier } (reintentada: { $msg })
msg-stopped-last-answer = { $why } (última respuesta: { $answer })
stop-not-sent = no enviado
# issue 32
ledger-url-not-postgres = no es una url de PostgreSQL: escriba postgres://USUARIO@SERVIDOR[:PUERTO]/BASE (añada ?sslmode=require para TLS)
ledger-url-invalid = no es una url de PostgreSQL válida ({ $error }): escriba postgres://USUARIO@SERVIDOR[:PUERTO]/BASE
ledger-url-password = lleva una contraseña, que no debe ir en un archivo de configuración: quítela de la url y dela en la variable de entorno PGPASSWORD o en ~/.pgpass (SERVIDOR:PUERTO:BASE:USUARIO:CONTRASEÑA, chmod 600)
ledger-pg-unreachable = no se puede llegar al servidor de la base de datos o dejó de responder ({ $error })
ledger-pg-auth = la base de datos rechazó el inicio de sesión ({ $error }): revise el usuario en [ledger] url y la contraseña en PGPASSWORD o ~/.pgpass
ledger-pg-no-database = la base de datos no existe ({ $error }): créela (createdb) o corrija el nombre en [ledger] url
ledger-pg-privilege = el usuario de la base de datos no puede hacer esto ({ $error }): la primera vez necesita crear tablas en la base (o que alguien que pueda ejecute `wolkvox-dispatch ledger migrate`), y después leerlas y escribirlas
ledger-pgpass-open = se ignora { $path }: otros pueden leerlo. Hágalo privado: chmod 600 { $path }
ledger-lost-mid-run = se perdió el registro de envíos { $path } mientras se enviaba: { $problem }. La ejecución dejó de iniciar solicitudes; cada mensaje que envió quedó reservado antes de salir, y el resto queda not_sent
ledger-migrated = el registro de envíos { $path } está en la versión de esquema { $to } (era { $from })
ledger-migrate-file = el registro de envíos { $path } es un archivo en este equipo: se pone al día cada vez que se abre. `ledger migrate` es para [ledger] url
ledger-no-subcommand = diga qué hacer con el registro: `wolkvox-dispatch ledger migrate`
history-imported-ledger = { $added } entradas añadidas al registro de envíos desde el archivo de registro { $file } ({ $known } ya estaban; las reservas de ejecuciones sin terminar entran como unknown)
cli-ledger-about = El registro de envíos del equipo en PostgreSQL ([ledger] url): `ledger migrate` crea o actualiza sus tablas
cli-ledger-words = `migrate`: crea o actualiza las tablas del registro en la base de datos
ledger-pg-certificate = este equipo no confía en el certificado del servidor de la base de datos, o es de otro nombre ({ $error }): si lo firma la CA de su empresa, dé esa CA en SSL_CERT_FILE o SSL_CERT_DIR (vea docs/networks.es.md); si no, revise el servidor en [ledger] url
ledger-pg-no-password = la base de datos pide una contraseña y no se dio ninguna: defina PGPASSWORD, o añada una línea a ~/.pgpass (SERVIDOR:PUERTO:BASE:USUARIO:CONTRASEÑA, chmod 600){ $hint }
