//! The bodies every server of benches/compression.sh serializes per
//! request: TechEmpower's json message, and a list of 50 items (the shape
//! of HttpArena's `json` test, ~5 KiB).

use serde::Serialize;

/// TechEmpower's `/json` body.
#[derive(Serialize)]
pub struct Message {
    pub message: &'static str,
}

/// One item of the list.
#[derive(Serialize)]
pub struct Item {
    pub id: u32,
    pub name: String,
    pub category: &'static str,
    pub price: f64,
    pub quantity: u32,
    pub active: bool,
    pub tags: [&'static str; 2],
}

/// The 50-item list.
#[derive(Serialize)]
pub struct List {
    pub items: Vec<Item>,
    pub count: usize,
}

pub fn list() -> List {
    let categories = ["electronics", "books", "clothing", "garden"];
    let items: Vec<Item> = (0..50)
        .map(|id| Item {
            id,
            name: format!("Item {id}"),
            category: categories[id as usize % 4],
            price: 9.99 + f64::from(id) * 1.5,
            quantity: id * 7 % 100,
            active: id % 3 != 0,
            tags: ["popular", "sale"],
        })
        .collect();
    List {
        count: items.len(),
        items,
    }
}

/// `--name N` from the command line.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("bad number"))
        .unwrap_or(default)
}
