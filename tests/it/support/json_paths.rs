//! JSON pointers into a document, for property tests that replace one value anywhere in it.

use serde_json::Value;

/// Every JSON pointer inside `doc` (not the root), and whether it names an object.
pub fn pointers(doc: &Value) -> Vec<(String, bool)> {
    fn walk(node: &Value, at: String, out: &mut Vec<(String, bool)>) {
        let children: Vec<(String, &Value)> = match node {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            _ => return,
        };
        for (key, child) in children {
            let path = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
            out.push((path.clone(), child.is_object()));
            walk(child, path, out);
        }
    }
    let mut out = Vec::new();
    walk(doc, String::new(), &mut out);
    out
}
