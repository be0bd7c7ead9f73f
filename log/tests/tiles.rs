//! Tile sets and tree behaviour: the tlog-tiles example (size 70,000) and integration in
//! batches of any shape giving the same tiles.

use pgext_log::{MemoryTiles, Tile, TileKind, integrate_hashes, leaf_hash, tiles_for_size};

#[test]
fn tlog_tiles_spec_example_size_70000() {
    // From the C2SP tlog-tiles text: 273 full level-0 tiles and a partial of 112; one full
    // level-1 tile and a partial of 17; a level-2 partial of 1.
    let tiles = tiles_for_size(70_000);
    let level = |l: u8| {
        tiles
            .iter()
            .filter(|t| t.kind == TileKind::Hashes(l))
            .copied()
            .collect::<Vec<Tile>>()
    };
    let l0 = level(0);
    assert_eq!(l0.iter().filter(|t| t.is_full()).count(), 273);
    assert_eq!(l0.last().unwrap().path(), "tile/0/273.p/112");
    let l1 = level(1);
    assert_eq!(
        l1.iter().map(Tile::path).collect::<Vec<_>>(),
        ["tile/1/000", "tile/1/001.p/17"]
    );
    assert_eq!(
        level(2).iter().map(Tile::path).collect::<Vec<_>>(),
        ["tile/2/000.p/1"]
    );
    assert!(level(3).is_empty());
    let bundles: Vec<Tile> = tiles
        .iter()
        .filter(|t| t.kind == TileKind::Entries)
        .copied()
        .collect();
    assert_eq!(bundles.len(), 274);
    assert_eq!(bundles.last().unwrap().path(), "tile/entries/273.p/112");

    // Integrating 70,000 leaves in uneven batches leaves exactly that set in the store, and the
    // same root as one batch.
    let leaves: Vec<_> = (0..70_000u32)
        .map(|i| leaf_hash(&i.to_be_bytes()))
        .collect();
    let mut store = MemoryTiles::new();
    let mut size = 0u64;
    let mut root = None;
    let mut last_widths = std::collections::HashMap::new();
    for chunk in leaves.chunks(9_999) {
        let out = integrate_hashes(size, chunk, &store).unwrap();
        for (t, d) in out.tiles {
            assert_eq!(d.len(), usize::from(t.width) * 32);
            last_widths.insert((t.kind, t.index), t.width);
            store.put(t, d);
        }
        size = out.size;
        root = Some(out.root);
    }
    let mut stored: Vec<Tile> = last_widths
        .into_iter()
        .map(|((kind, index), width)| Tile { kind, index, width })
        .collect();
    stored.sort();
    let mut want: Vec<Tile> = tiles
        .into_iter()
        .filter(|t| t.kind != TileKind::Entries)
        .collect();
    want.sort();
    assert_eq!(stored, want);
    let one = integrate_hashes(0, &leaves, &MemoryTiles::new()).unwrap();
    assert_eq!(Some(one.root), root);
}
