//! Release uploads: forms that are not the upload form, archives no author's tool makes (in
//! each archive format), METAs that lie or point outside the distribution, and statements
//! that do not match what they sign or break the log's rules.

use pgext_spec::entry::{Action, ENTRY_VERSION, Release, Statement, Status, user_key_id};
use pgext_tests::fixtures;

use super::{Case, Fixture, Req, case, post_json, upload};

/// Ways to pack members with names no writer library would write.
#[derive(Clone, Copy)]
enum Format {
    TarGz,
    TarBz2,
    Zip,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::TarGz => "tar.gz",
            Format::TarBz2 => "tar.bz2",
            Format::Zip => "zip",
        }
    }

    fn pack(self, members: &[(String, Vec<u8>)]) -> Vec<u8> {
        match self {
            Format::Zip => zip_of(members),
            Format::TarGz | Format::TarBz2 => {
                let tar = tar_of(members);
                compress(self, &tar)
            }
        }
    }
}

fn compress(f: Format, tar: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    match f {
        Format::TarBz2 => {
            let mut w = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            w.write_all(tar).unwrap();
            w.finish().unwrap()
        }
        _ => {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            w.write_all(tar).unwrap();
            w.finish().unwrap()
        }
    }
}

/// A tar whose member names are written as given (GNU long names past 100 bytes).
fn tar_of(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push = |name: &[u8], kind: u8, data: &[u8]| {
        let mut h = [0u8; 512];
        let n = name.len().min(100);
        h[..n].copy_from_slice(&name[..n]);
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = kind;
        h[257..265].copy_from_slice(b"ustar  \0");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    };
    for (name, data) in members {
        if name.len() > 100 {
            let mut long = name.as_bytes().to_vec();
            long.push(0);
            push(b"././@LongLink", b'L', &long);
        }
        push(name.as_bytes(), b'0', data);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A stored zip whose central directory lists `central` (name, local header it points at)
/// over local headers `locals` (name, data).
fn zip_raw(
    locals: &[(&str, &[u8])],
    central: &[(&str, usize)],
    eocd_records: Option<u16>,
) -> Vec<u8> {
    let crc = |data: &[u8]| {
        let mut c = 0xffff_ffffu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0xedb8_8320
                } else {
                    c >> 1
                };
            }
        }
        !c
    };
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for (name, data) in locals {
        offsets.push(out.len() as u32);
        out.extend(b"PK\x03\x04");
        out.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend(crc(data).to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend((name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(name.as_bytes());
        out.extend(*data);
    }
    let cd = out.len() as u32;
    for (name, k) in central {
        let data = locals[*k].1;
        out.extend(b"PK\x01\x02");
        out.extend([20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend(crc(data).to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend((name.len() as u16).to_le_bytes());
        out.extend([0u8; 8]);
        out.extend((0o100644u32 << 16).to_le_bytes());
        out.extend(offsets[*k].to_le_bytes());
        out.extend(name.as_bytes());
    }
    let size = out.len() as u32 - cd;
    let n = eocd_records.unwrap_or(central.len() as u16);
    out.extend(b"PK\x05\x06");
    out.extend([0u8; 4]);
    out.extend(n.to_le_bytes());
    out.extend(n.to_le_bytes());
    out.extend(size.to_le_bytes());
    out.extend(cd.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

fn zip_of(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let locals: Vec<(&str, &[u8])> = members
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let central: Vec<(&str, usize)> = locals
        .iter()
        .enumerate()
        .map(|(k, (n, _))| (*n, k))
        .collect();
    zip_raw(&locals, &central, None)
}

pub(crate) fn cases(fx: &Fixture) -> Vec<Case> {
    let alice = &fx.alice;
    let sign = |r: &Release| alice.sign(Action::Release(r.clone())).to_bytes();
    let good_entry = sign(&fx.next);
    // The good files under `pair-1.0.1/`, plus `extra` members with names as given.
    let with = |extra: &[(&str, &[u8])]| -> Vec<(String, Vec<u8>)> {
        let mut m: Vec<(String, Vec<u8>)> = fx
            .files
            .iter()
            .map(|(p, d)| (format!("pair-1.0.1/{p}"), d.clone()))
            .collect();
        m.extend(extra.iter().map(|(n, d)| ((*n).to_string(), d.to_vec())));
        m
    };
    let bad = "bad-archive";
    let mut v = Vec::new();
    let long_component = format!("pair-1.0.1/{}", "n".repeat(256));
    let long_path = format!("pair-1.0.1/{}f", "d/".repeat(520));
    let names: Vec<(&str, String, &str)> = vec![
        (
            "climbing out",
            "pair-1.0.1/../../evil".into(),
            "unsafe member path",
        ),
        ("an absolute path", "/etc/evil".into(), "unsafe member path"),
        (
            "a backslash",
            "pair-1.0.1\\..\\evil".into(),
            "unsafe member path",
        ),
        ("a drive letter", "C:/evil".into(), "unsafe member path"),
        (
            "a control character",
            "pair-1.0.1/a\u{1}b".into(),
            "unsafe member path",
        ),
        (
            "a terminal escape",
            "pair-1.0.1/a\u{1b}[2Jb".into(),
            "unsafe member path",
        ),
        (
            "a DEL character",
            "pair-1.0.1/a\u{7f}b".into(),
            "unsafe member path",
        ),
        ("a newline", "pair-1.0.1/a\nb".into(), "unsafe member path"),
        (
            "a carriage return",
            "pair-1.0.1/a\rb".into(),
            "unsafe member path",
        ),
        ("a tab", "pair-1.0.1/a\tb".into(), "unsafe member path"),
        (
            "a component of 256 bytes",
            long_component,
            "unsafe member path",
        ),
        ("a path of 1,050 bytes", long_path, "unsafe member path"),
        (
            "a duplicate member",
            "pair-1.0.1/Makefile".into(),
            "duplicate member",
        ),
        (
            "names differing only in case",
            "pair-1.0.1/makefile".into(),
            "duplicate member",
        ),
        (
            "a file that is also a folder",
            "pair-1.0.1/Makefile/x".into(),
            "duplicate member",
        ),
    ];
    for format in [Format::TarGz, Format::TarBz2, Format::Zip] {
        for (what, name, words) in &names {
            let archive = format.pack(&with(&[(name, b"x")]));
            v.push(case(
                format!("{} with {what}", format.name()),
                upload(good_entry.clone(), archive),
                422,
                bad,
                words,
            ));
        }
    }
    // Special files, in tars.
    for (what, kind) in [
        ("a symlink", b'2'),
        ("a hard link", b'1'),
        ("a character device", b'3'),
        ("a block device", b'4'),
        ("a FIFO", b'6'),
    ] {
        let mut tar = tar_of(&with(&[]));
        let end = tar.len() - 1024;
        let mut h = tar[..512].to_vec();
        h[..100].fill(0);
        h[..16].copy_from_slice(b"pair-1.0.1/speci");
        h[156] = kind;
        h[124..135].copy_from_slice(b"00000000000");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        tar.splice(end..end, h);
        v.push(case(
            format!("tar.gz with {what}"),
            upload(good_entry.clone(), compress(Format::TarGz, &tar)),
            422,
            bad,
            "link or special file",
        ));
    }
    // Zips the zip reader would misread.
    let (m, d): (&str, &[u8]) = ("pair-1.0.1/Makefile", b"all:");
    let meta = fx.files[0].1.as_slice();
    let zips: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "two central records of one name",
            zip_raw(
                &[("pair-1.0.1/META.json", meta), (m, d), (m, b"other")],
                &[("pair-1.0.1/META.json", 0), (m, 1), (m, 2)],
                None,
            ),
            "duplicate member",
        ),
        (
            "two records of one local header",
            zip_raw(
                &[("pair-1.0.1/META.json", meta), (m, d)],
                &[("pair-1.0.1/META.json", 0), (m, 1), ("pair-1.0.1/b", 1)],
                None,
            ),
            "duplicate member",
        ),
        (
            "a local header naming another path",
            zip_raw(
                &[("pair-1.0.1/META.json", meta), ("pair-1.0.1/../../evil", d)],
                &[("pair-1.0.1/META.json", 0), (m, 1)],
                None,
            ),
            "inconsistent zip",
        ),
        (
            "a record count that lies",
            zip_raw(
                &[("pair-1.0.1/META.json", meta), (m, d)],
                &[("pair-1.0.1/META.json", 0), (m, 1)],
                Some(7),
            ),
            "",
        ),
        (
            "a Zip64 record count",
            zip_raw(
                &[("pair-1.0.1/META.json", meta), (m, d)],
                &[("pair-1.0.1/META.json", 0), (m, 1)],
                Some(0xffff),
            ),
            "",
        ),
        (
            "a NUL in a name",
            zip_of(&with(&[("pair-1.0.1/a\0b", b"x")])),
            "unsafe member path",
        ),
        (
            "no central directory",
            {
                let mut z = zip_of(&with(&[]));
                z.truncate(z.len() - 22);
                z
            },
            "",
        ),
        (
            "a central directory cut short",
            {
                let mut z = zip_of(&with(&[]));
                let n = z.len();
                z.drain(n - 60..n - 22);
                z
            },
            "",
        ),
    ];
    for (what, archive, words) in zips {
        v.push(case(
            format!("zip with {what}"),
            upload(good_entry.clone(), archive),
            422,
            bad,
            words,
        ));
    }
    // Streams that are not what they say.
    let tgz = fx.next_tgz.clone();
    let bomb = {
        let mut files = fx.files.clone();
        files.push(("zeros.bin".into(), vec![0u8; 150 << 20]));
        fixtures::tar_gz("pair-1.0.1", &files)
    };
    let many = {
        let mut files = fx.files.clone();
        files.extend((0..5001).map(|i| (format!("f/{i}"), Vec::new())));
        fixtures::tar_gz("pair-1.0.1", &files)
    };
    let streams: Vec<(&str, Vec<u8>, u16, &str, &str)> = vec![
        ("an empty archive field", Vec::new(), 422, bad, "not a zip"),
        ("plain text", b"hello".to_vec(), 422, bad, "not a zip"),
        (
            "gzip magic then garbage",
            [&[0x1f, 0x8b][..], &[7; 64]].concat(),
            422,
            bad,
            "unreadable",
        ),
        (
            "bzip2 magic then garbage",
            [&b"BZh9"[..], &[7; 64]].concat(),
            422,
            bad,
            "unreadable",
        ),
        (
            "a gzip cut in half",
            tgz[..tgz.len() / 2].to_vec(),
            422,
            bad,
            "unreadable",
        ),
        (
            "a tar of no files",
            compress(Format::TarGz, &[0u8; 1024]),
            422,
            bad,
            "no files",
        ),
        ("a tar.gz bomb", bomb, 422, bad, "zip bomb"),
        ("5,001 members", many, 422, bad, "more than 5000 members"),
        (
            "an archive over the size limit",
            vec![0x1f; 22 << 20],
            413,
            "archive-too-large",
            "limited to",
        ),
    ];
    for (what, archive, status, code, words) in streams {
        v.push(case(
            format!("upload of {what}"),
            upload(good_entry.clone(), archive),
            status,
            code,
            words,
        ));
    }
    // METAs.
    let with_meta = |meta: &str| {
        let mut files = fx.files.clone();
        files[0].1 = meta.as_bytes().to_vec();
        fixtures::tar_gz("pair-1.0.1", &files)
    };
    let meta_v1 = |provides: &str| {
        format!(
            r#"{{"name":"pair","version":"1.0.1","abstract":"A key/value pair","maintainer":"s","license":"postgresql","provides":{{"pair":{provides}}}}}"#
        )
    };
    let metas: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "no META.json",
            fixtures::tar_gz("pair-1.0.1", &fx.files[1..]),
            "missing-meta",
            "no META.json",
        ),
        (
            "a META that is not JSON",
            with_meta("{nope"),
            "invalid-meta",
            "not valid JSON",
        ),
        (
            "a META that is an array",
            with_meta("[]"),
            "invalid-meta",
            "object",
        ),
        (
            "a META missing its version",
            with_meta(
                r#"{"name":"pair","abstract":"x","maintainer":"s","license":"postgresql","provides":{"pair":{"file":"a.sql","version":"1.0.1"}}}"#,
            ),
            "invalid-meta",
            "meta spec",
        ),
        (
            "a META providing nothing",
            with_meta(
                r#"{"name":"pair","version":"1.0.1","abstract":"A key/value pair","maintainer":"s","license":"postgresql","provides":{}}"#,
            ),
            "invalid-meta",
            "provides",
        ),
        (
            "a META naming an absolute SQL file",
            with_meta(&meta_v1(r#"{"file":"/etc/passwd","version":"1.0.1"}"#)),
            "invalid-meta",
            "provides.pair.file",
        ),
        (
            "a META naming a docfile outside",
            with_meta(&meta_v1(
                r#"{"file":"sql/pair.sql","docfile":"/usr/share/doc/x","version":"1.0.1"}"#,
            )),
            "invalid-meta",
            "provides.pair.docfile",
        ),
        (
            "a META v2 whose preload and purl pgxn_meta refuses",
            with_meta(
                r#"{"name":"pair","version":"1.0.1","abstract":"x","license":"PostgreSQL","maintainers":[{"name":"s","email":"s@example.org"}],"meta-spec":{"version":"2.0.0"},"contents":{"extensions":{"pair":{"sql":"sql/pair.sql","control":"pair.control"}},"modules":{"pair":{"type":"extension","lib":"pair","preload":"always"}}},"dependencies":{"packages":{"build":{"requires":{"not a purl; rm -rf /":0}}}}}"#,
            ),
            "invalid-meta",
            "v2",
        ),
        (
            "a META of spec v2 that breaks it",
            with_meta(r#"{"name":"pair","version":"1.0.1","meta-spec":{"version":"2.0.0"}}"#),
            "invalid-meta",
            "v2",
        ),
    ];
    for (what, archive, code, words) in metas {
        v.push(case(
            format!("upload with {what}"),
            upload(good_entry.clone(), archive),
            422,
            code,
            words,
        ));
    }
    // Statements that do not match what they sign, or break the rules.
    let r = &fx.next;
    let changed = |f: &dyn Fn(&mut Release)| {
        let mut x = r.clone();
        f(&mut x);
        x
    };
    let statements: Vec<(&str, Vec<u8>, u16, &str, &str)> = vec![
        (
            "another version than META's",
            sign(&changed(&|x| x.version = "1.0.2".into())),
            422,
            "meta-mismatch",
            "meta.json describes",
        ),
        (
            "another dist than META's",
            sign(&changed(&|x| x.dist = "other".into())),
            422,
            "meta-mismatch",
            "meta.json describes",
        ),
        (
            "other extensions than META's",
            sign(&changed(&|x| {
                x.provides = [("nope".to_string(), "1.0.1".to_string())].into()
            })),
            422,
            "meta-mismatch",
            "provides",
        ),
        (
            "another status than META's",
            sign(&changed(&|x| x.status = Status::Testing)),
            422,
            "meta-mismatch",
            "release_status",
        ),
        (
            "another zip digest",
            sign(&changed(&|x| x.sha256 = "0".repeat(64))),
            422,
            "digest-mismatch",
            "sha256",
        ),
        (
            "another SHA-1",
            sign(&changed(&|x| x.sha1 = "0".repeat(40))),
            422,
            "digest-mismatch",
            "sha256",
        ),
        (
            "another size",
            sign(&changed(&|x| x.size += 1)),
            422,
            "digest-mismatch",
            "bytes",
        ),
        (
            "another META digest",
            sign(&changed(&|x| x.meta_sha256 = "0".repeat(64))),
            422,
            "digest-mismatch",
            "meta_sha256",
        ),
        (
            "digests in capitals",
            sign(&changed(&|x| x.sha256 = x.sha256.to_uppercase())),
            422,
            "invalid-name",
            "lowercase hex",
        ),
        (
            "a version that is not SemVer",
            sign(&changed(&|x| x.version = "1.0".into())),
            422,
            "invalid-version",
            "not semver",
        ),
        (
            "a version below the last",
            sign(&changed(&|x| x.version = "0.9.0".into())),
            422,
            "version-order",
            "must be greater",
        ),
        (
            "the version published already",
            sign(&changed(&|x| x.version = "1.0.0".into())),
            409,
            "duplicate-version",
            "published already",
        ),
        (
            "a reserved dist name",
            sign(&changed(&|x| x.dist = "postgres".into())),
            422,
            "reserved-name",
            "reserved",
        ),
        (
            "a dist name with a colon",
            sign(&changed(&|x| x.dist = "pa:ir".into())),
            422,
            "invalid-name",
            "",
        ),
        (
            "no extension",
            sign(&changed(&|x| x.provides.clear())),
            422,
            "invalid-name",
            "extension",
        ),
        (
            "a release by a non-owner",
            fx.bob.sign(Action::Release(r.clone())).to_bytes(),
            403,
            "not-owner",
            "not an owner",
        ),
        (
            "a statement that is not a release",
            alice
                .sign(Action::Unyank {
                    dist: "pair".into(),
                    version: "1.0.0".into(),
                })
                .to_bytes(),
            400,
            "bad-request",
            "not a release",
        ),
        (
            "a stale statement",
            Statement {
                v: ENTRY_VERSION,
                actor: "alice".into(),
                key_id: user_key_id(alice.key.verifying_key().as_bytes()),
                time: 1,
                action: Action::Release(r.clone()),
            }
            .sign(&alice.key)
            .to_bytes(),
            422,
            "stale-statement",
            "within a day",
        ),
    ];
    for (what, entry, status, code, words) in statements {
        v.push(case(
            format!("a statement with {what}"),
            upload(entry, tgz.clone()),
            status,
            code,
            words,
        ));
    }
    // Forms that are not the upload form.
    let json = |body: &[u8]| Req::Raw {
        method: "POST",
        path: "/api/v1/releases".into(),
        content_type: Some("application/json"),
        body: body.to_vec(),
    };
    let forms: Vec<(&str, Req, &str, &str)> = vec![
        (
            "JSON instead of a form",
            json(b"{}"),
            "bad-request",
            "boundary",
        ),
        (
            "a form without a boundary",
            Req::Raw {
                method: "POST",
                path: "/api/v1/releases".into(),
                content_type: Some("multipart/form-data"),
                body: b"x".to_vec(),
            },
            "bad-request",
            "boundary",
        ),
        (
            "a form body that is not a form",
            Req::Raw {
                method: "POST",
                path: "/api/v1/releases".into(),
                content_type: Some("multipart/form-data; boundary=XYZ"),
                body: b"not a form at all".to_vec(),
            },
            "bad-request",
            "multipart",
        ),
        (
            "no entry field",
            Req::Form(vec![("archive", tgz.clone())]),
            "bad-request",
            "missing the `entry` field",
        ),
        (
            "no archive field",
            Req::Form(vec![("entry", good_entry.clone())]),
            "bad-request",
            "missing the `archive` field",
        ),
        (
            "the entry field twice",
            Req::Form(vec![
                ("entry", good_entry.clone()),
                ("entry", good_entry.clone()),
                ("archive", tgz.clone()),
            ]),
            "bad-request",
            "given twice",
        ),
        (
            "the archive field twice",
            Req::Form(vec![
                ("entry", good_entry.clone()),
                ("archive", tgz.clone()),
                ("archive", tgz.clone()),
            ]),
            "bad-request",
            "given twice",
        ),
        (
            "an entry that is not JSON",
            Req::Form(vec![("entry", b"nope".to_vec()), ("archive", tgz.clone())]),
            "bad-request",
            "malformed entry",
        ),
    ];
    for (what, req, code, words) in forms {
        v.push(case(format!("a form with {what}"), req, 400, code, words));
    }
    // Build uploads: their own route, with a larger limit than releases, and the same shape.
    let builds = |fields: &[(&str, &[u8])]| {
        let mut body = Vec::new();
        for (name, data) in fields {
            body.extend_from_slice(
                format!("--XYZ\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"f\"\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--XYZ--\r\n");
        Req::Raw {
            method: "POST",
            path: "/api/v1/builds".into(),
            content_type: Some("multipart/form-data; boundary=XYZ"),
            body,
        }
    };
    v.push(case(
        "a build upload that is JSON",
        post_json("/api/v1/builds", b"{}".to_vec()),
        400,
        "bad-request",
        "boundary",
    ));
    v.push(case(
        "a build upload without its package",
        builds(&[("entry", &sign(&fx.next))]),
        400,
        "bad-request",
        "missing the `binary` field",
    ));
    v.push(case(
        "a release statement sent as a build",
        builds(&[("entry", &sign(&fx.next)), ("binary", b"PK")]),
        400,
        "bad-request",
        "not a build",
    ));
    // The statement is judged before the package is read: 66 MiB behind a statement that is
    // not a build are refused unread.
    v.push(case(
        "a binary package over the size limit behind a release statement",
        builds(&[("entry", &sign(&fx.next)), ("binary", &vec![0u8; 66 << 20])]),
        400,
        "bad-request",
        "not a build",
    ));
    v.push(case(
        "a build upload whose package comes before its statement",
        builds(&[("binary", b"PK"), ("entry", &sign(&fx.next))]),
        400,
        "bad-request",
        "must come before",
    ));
    v
}
