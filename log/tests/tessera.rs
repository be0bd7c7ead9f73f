//! Tessera's 15-entry test log reproduced byte for byte: every checkpoint, level-0 partial tile
//! and entry bundle, appending one entry per checkpoint with its published key.

use pgext_log::{
    Checkpoint, MemoryTiles, SignerKey, Tile, VerifierKey, integrate, open_checkpoint, sign,
};

use crate::{read, read_text};

#[test]
fn tessera_log_reproduced_byte_for_byte() {
    let keys = read_text("tessera-testdata-log/KEYS.txt");
    let field = |k: &str| {
        keys.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap()
            .to_string()
    };
    let signer = SignerKey::from_private_text(&field("LOG_PRIVATE_KEY")).unwrap();
    let vkey: VerifierKey = field("LOG_PUBLIC_KEY").parse().unwrap();
    assert_eq!(signer.verifier(), &vkey);
    let entries: Vec<String> = field("ENTRIES").split(' ').map(str::to_string).collect();
    assert_eq!(entries.len(), 15);

    let origin = vkey.name().to_string();
    let empty = sign(
        &Checkpoint::new(&origin, 0, pgext_log::Hash::empty_root()).to_text(),
        &[&signer],
        0,
    )
    .unwrap();
    assert_eq!(empty.as_bytes(), read("tessera-testdata-log/checkpoint.0"));

    let mut store = MemoryTiles::new();
    for (i, entry) in entries.iter().enumerate() {
        let out = integrate(i as u64, &[entry.as_bytes()], &store).unwrap();
        let size = out.size;
        // One entry into a log under 256 changes exactly the level-0 tile and the bundle.
        let paths: Vec<String> = out.tiles.iter().map(|(t, _)| t.path()).collect();
        assert_eq!(
            paths,
            [
                format!("tile/0/000.p/{size}"),
                format!("tile/entries/000.p/{size}")
            ]
        );
        for (tile, data) in &out.tiles {
            assert_eq!(
                data,
                &read(&format!("tessera-testdata-log/{}", tile.path())),
                "{tile}"
            );
        }
        let note = sign(
            &Checkpoint::new(&origin, size, out.root).to_text(),
            &[&signer],
            0,
        )
        .unwrap();
        let want = read(&format!("tessera-testdata-log/checkpoint.{size}"));
        assert_eq!(note.as_bytes(), want, "checkpoint.{size}");
        open_checkpoint(&want, &vkey, &[]).unwrap();
        for (t, d) in out.tiles {
            store.put(t, d);
        }
    }
    assert!(Tile::parse_path("tile/0/000.p/15").is_ok());
}
