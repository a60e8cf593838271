/*!
Unit tests of reading a list: text files (quoting, row numbers, encodings,
delimiters, long records) and spreadsheets (sheets, numbers as digits), through
`from_reader_with` and `open_with` as the commands read them.
*/

use super::text::{SNIFF_BYTES, detect_delimiter};
use super::*;

type Read = (Vec<String>, Vec<Result<Record, InputError>>);

fn read_with(text: &[u8], options: &ReadOptions) -> Result<Read, InputError> {
    let r = from_reader_with(
        Path::new("t.csv"),
        Box::new(std::io::Cursor::new(text.to_vec())),
        options,
    )?;
    let header = r.header().to_vec();
    Ok((header, r.collect()))
}

fn rows(text: &[u8]) -> Result<Read, InputError> {
    read_with(text, &ReadOptions::default())
}

fn fields(read: &Read) -> Vec<Vec<String>> {
    read.1
        .iter()
        .map(|r| r.as_ref().expect("row").fields.clone())
        .collect()
}

#[test]
fn reads_quoted_fields_with_commas_quotes_and_newlines() {
    let (header, rows) = rows(
        b"\xEF\xBB\xBFtelephone, message \n573001234567,\"Hola, \"\"Ana\"\"\nadi\xC3\xB3s\"\n593991234567,x\n\n",
    )
    .unwrap();
    assert_eq!(header, ["telephone", "message"]);
    let rows: Vec<Record> = rows.into_iter().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].fields[1], "Hola, \"Ana\"\nadiós");
    assert_eq!((rows[0].row, rows[0].line), (1, 2));
    assert_eq!((rows[1].row, rows[1].line), (2, 4));
}

#[test]
fn rows_are_numbered_as_a_spreadsheet_shows_them() {
    // The header is row 1 (Excel hides the `sep=` line); a record is one row
    // whatever line breaks its fields hold; a row of only delimiters (how a
    // spreadsheet exports an empty row) is skipped but keeps its row number.
    for end in ["\n", "\r\n"] {
        let text = format!("sep=,{end}a,b{end}1,x{end},{end}2,\"y\nz\"{end}3,w{end}");
        let (_, rows) = rows(text.as_bytes()).unwrap();
        let at: Vec<(u64, u64)> = rows
            .into_iter()
            .map(Result::unwrap)
            .map(|r| (r.row, r.shown))
            .collect();
        assert_eq!(at, [(1, 2), (2, 4), (3, 5)], "ending {end:?}");
    }
}

#[test]
fn empty_and_blank_files_are_errors() {
    assert!(matches!(rows(b""), Err(InputError::Empty { .. })));
    assert!(matches!(rows(b"\n\n"), Err(InputError::Empty { .. })));
    assert!(matches!(rows(b" , \n"), Err(InputError::Empty { .. })));
}

#[test]
fn windows_1252_is_detected_and_decoded() {
    // "Teléfono;Mensaje" / "Señora Núñez: información" as Excel writes them on Spanish Windows.
    let read =
        rows(b"Nombre;Tel\xE9fono;Mensaje\r\nSe\xF1ora N\xFA\xF1ez;300 123 4567;informaci\xF3n \x80 5\r\n")
            .unwrap();
    assert_eq!(read.0, ["Nombre", "Teléfono", "Mensaje"]);
    assert_eq!(
        fields(&read),
        [["Señora Núñez", "300 123 4567", "información € 5"]]
    );
}

#[test]
fn utf8_with_and_without_bom_is_kept() {
    for bom in [&b""[..], b"\xEF\xBB\xBF"] {
        let text = [bom, "nombre;teléfono\nSeñora;1\n".as_bytes()].concat();
        let read = rows(&text).unwrap();
        assert_eq!(read.0, ["nombre", "teléfono"]);
        assert_eq!(fields(&read), [["Señora", "1"]]);
    }
}

#[test]
fn utf16_unicode_text_exports_are_transcoded() {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in "Celular\tMensaje\r\n300 123 4567\tSeñora 👋\r\n".encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    let read = rows(&bytes).unwrap();
    assert_eq!(read.0, ["Celular", "Mensaje"]);
    assert_eq!(fields(&read), [["300 123 4567", "Señora 👋"]]);
}

#[test]
fn an_ascii_start_defers_the_encoding_to_the_first_accent() {
    // More ASCII than the sniffed prefix, then a Windows-1252 byte.
    let mut text = b"telephone,message\n".to_vec();
    while text.len() < SNIFF_BYTES + 100 {
        text.extend_from_slice(b"573001234567,hola\n");
    }
    let windows = [&text[..], b"573001234567,se\xF1ora\n"].concat();
    let read = rows(&windows).unwrap();
    assert_eq!(
        read.1.last().unwrap().as_ref().unwrap().fields[1],
        "se\u{f1}ora"
    );
    // The same in UTF-8 stays UTF-8.
    let utf8 = [&text[..], "573001234567,se\u{f1}ora\n".as_bytes()].concat();
    let read = rows(&utf8).unwrap();
    assert_eq!(
        read.1.last().unwrap().as_ref().unwrap().fields[1],
        "se\u{f1}ora"
    );
}

#[test]
fn invalid_utf8_in_a_utf8_file_names_the_row_and_stops() {
    // UTF-8 accents in the sniffed start, a Windows-1252 byte later: the file
    // mixes encodings, which is an error naming the row, not a guess.
    let mut text = b"telephone,message\n1,adi\xC3\xB3s\n".to_vec();
    while text.len() < SNIFF_BYTES + 100 {
        text.extend_from_slice(b"573001234567,hola\n");
    }
    text.extend_from_slice(b"2,se\xF1ora\n3,later\n");
    let (_, rows) = rows_of(&text);
    let n = rows.len();
    let err = rows[n - 1].as_ref().unwrap_err().to_string();
    // Named by the row a spreadsheet shows (the header is row 1).
    assert!(
        err.contains(&format!("row {}", n + 1))
            && err.contains("column 2")
            && err.contains("mixes encodings"),
        "{err}"
    );
    // Declared UTF-8: the same, naming the setting.
    let (_, rows) = read_with(
        b"telephone,message\n2,se\xF1ora\n",
        &ReadOptions {
            encoding: Encoding::Utf8,
            ..ReadOptions::default()
        },
    )
    .unwrap();
    let err = rows[0].as_ref().unwrap_err().to_string();
    assert!(err.contains("input.encoding"), "{err}");
}

#[test]
fn a_file_that_mixes_utf8_and_windows_1252_is_refused_naming_the_legacy_field() {
    for text in [
        &b"telephone,message\n573001234567,hola se\xc3\xb1ora\n573001234568,hola \xe9 mundo\n"[..],
        &b"telephone,message\n573001234568,hola \xe9 mundo\n573001234567,hola se\xc3\xb1ora\n"[..],
    ] {
        let (_, rows) = rows_of(text);
        let err = rows
            .iter()
            .find_map(|r| r.as_ref().err())
            .map(ToString::to_string)
            .unwrap_or_default();
        let legacy_row = if text.windows(2).position(|w| w == b"\xe9 ")
            < text.windows(2).position(|w| w == b"\xc3\xb1")
        {
            2
        } else {
            3
        };
        assert!(
            err.contains(&format!("row {legacy_row}, column 2")) && err.contains("mixes encodings"),
            "{err}"
        );
    }
    // One field holding both.
    let (_, rows) = rows_of(b"telephone,message\n573001234567,se\xc3\xb1ora \xe9\n");
    assert!(rows[0].is_err());
}

#[test]
fn a_long_row_is_marked_and_later_rows_keep_their_true_lines() {
    let big = "x".repeat(MAX_RECORD_BYTES + 10);
    let text = format!(
        "telephone,message\n573001234567,\"{}\n{}\"\n573001234568,hola\n",
        big, big
    );
    let (_, read) = rows_of(text.as_bytes());
    let got: Vec<Record> = read.into_iter().map(Result::unwrap).collect();
    assert_eq!(got.len(), 2);
    assert!(got[0].too_long && got[0].line == 2);
    assert!(got[0].fields.iter().map(String::len).sum::<usize>() <= MAX_RECORD_BYTES);
    assert!(!got[1].too_long);
    assert_eq!(got[1].line, 4, "the line of the row after the cut");
    assert_eq!(got[1].fields, ["573001234568", "hola"]);
    // A header that long is refused.
    let err = rows(format!("{big},m\n1,2\n").as_bytes())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("header line is longer"), "{err}");
}

fn rows_of(text: &[u8]) -> Read {
    rows(text).unwrap()
}

#[test]
fn the_configured_encoding_overrides_detection() {
    // Valid UTF-8 ("Ã±" in Windows-1252 terms), read as Windows-1252 on request.
    let read = read_with(
        "a,b\n1,ñ\n".as_bytes(),
        &ReadOptions {
            encoding: Encoding::Windows1252,
            ..ReadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(fields(&read), [["1", "Ã±"]]);
}

#[test]
fn delimiters_are_detected_from_the_header_line() {
    assert_eq!(detect_delimiter(b"a,b,c\n1;2;3;4;5\n"), b',');
    assert_eq!(detect_delimiter(b"Nombre;Tel\xE9fono;Mensaje\r\n"), b';');
    assert_eq!(detect_delimiter(b"a\tb\tc"), b'\t');
    assert_eq!(detect_delimiter(b"a|b|c\n"), b'|');
    assert_eq!(detect_delimiter(b"\"a;b\",c\n"), b',');
    assert_eq!(detect_delimiter(b"\xEF\xBB\xBFa;b"), b';');
    assert_eq!(detect_delimiter(b"telephone\n"), b',');
    assert_eq!(detect_delimiter(b"sep=;\na,b,c\n"), b';');
    let read = rows_of(b"sep=;\nCelular;Mensaje\n1;Hola, Ana\n");
    assert_eq!(read.0, ["Celular", "Mensaje"]);
    assert_eq!(fields(&read), [["1", "Hola, Ana"]]);
    // An explicit delimiter wins.
    let read = read_with(
        b"a;b,c\n1;2,3\n",
        &ReadOptions {
            delimiter: Some(b','),
            ..ReadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(read.0, ["a;b", "c"]);
}

#[test]
fn ragged_rows_are_kept_for_the_validator() {
    let (_, rows) = rows(b"a,b\n1\n1,2,3\n").unwrap();
    let lens: Vec<usize> = rows
        .iter()
        .map(|r| r.as_ref().unwrap().fields.len())
        .collect();
    assert_eq!(lens, [1, 3]);
}

fn write_xlsx(path: &Path, sheets: &[(&str, &[&[Cell]])]) {
    let mut book = rust_xlsxwriter::Workbook::new();
    for (name, rows) in sheets {
        let sheet = book.add_worksheet();
        sheet.set_name(*name).unwrap();
        for (r, cells) in rows.iter().enumerate() {
            for (c, cell) in cells.iter().enumerate() {
                let (r, c) = (r as u32 + 1, c as u16);
                match cell {
                    Cell::Text(t) => sheet.write_string(r, c, *t).map(|_| ()),
                    Cell::Number(n) => sheet.write_number(r, c, *n).map(|_| ()),
                    Cell::Blank => Ok(()),
                }
                .unwrap();
            }
        }
    }
    book.save(path).unwrap();
}

enum Cell {
    Text(&'static str),
    Number(f64),
    Blank,
}

#[test]
fn xlsx_sheets_are_read_with_numbers_as_digits() {
    use Cell::*;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lista.XLSX");
    let first: &[&[Cell]] = &[
        &[Text("Nombre"), Text("Celular"), Text("Mensaje")],
        &[
            Text("Señora Núñez"),
            Number(573001234567.0),
            Text("información"),
        ],
        &[Blank, Blank, Blank],
        &[Text("José"), Number(3001234567.0), Number(12.5)],
    ];
    let second: &[&[Cell]] = &[&[Text("telephone")], &[Number(34612345678.0)]];
    write_xlsx(&path, &[("Contactos", first), ("Otra hoja", second)]);
    assert!(is_spreadsheet(&path));

    let rows = open_with(&path, &ReadOptions::default()).unwrap();
    assert_eq!(rows.header(), ["Nombre", "Celular", "Mensaje"]);
    let records: Vec<Record> = rows.map(Result::unwrap).collect();
    // The blank sheet row is skipped; `line` is the sheet row (the header is on row 2).
    assert_eq!(
        records,
        [
            Record {
                row: 1,
                line: 3,
                shown: 3,
                fields: vec![
                    "Señora Núñez".into(),
                    "573001234567".into(),
                    "información".into()
                ],
                too_long: false,
                errors: Vec::new(),
                dates: Vec::new(),
            },
            Record {
                row: 2,
                line: 5,
                shown: 5,
                // Numbers as shown in Colombia (the default `[input] locale`).
                fields: vec!["José".into(), "3001234567".into(), "12,5".into()],
                too_long: false,
                errors: Vec::new(),
                dates: Vec::new(),
            },
        ]
    );

    let options = ReadOptions {
        sheet: Some("otra hoja".into()),
        ..ReadOptions::default()
    };
    let rows = open_with(&path, &options).unwrap();
    assert_eq!(rows.header(), ["telephone"]);
    assert_eq!(
        rows.map(Result::unwrap).next().unwrap().fields,
        ["34612345678"]
    );

    let options = ReadOptions {
        sheet: Some("Hoja1".into()),
        ..ReadOptions::default()
    };
    let err = open_with(&path, &options).unwrap_err().to_string();
    assert!(
        err.contains("\"Hoja1\"") && err.contains("\"Contactos\", \"Otra hoja\""),
        "{err}"
    );
}

#[test]
fn a_text_file_with_a_spreadsheet_name_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lista.xlsx");
    std::fs::write(&path, "telephone,message\n1,2\n").unwrap();
    let err = open(&path).unwrap_err().to_string();
    assert!(err.contains("spreadsheet") && err.contains(".csv"), "{err}");
    let err = open(&dir.path().join("missing.xlsx")).unwrap_err();
    assert!(matches!(err, InputError::Open { .. }), "{err}");
}
