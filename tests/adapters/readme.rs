//! README's Rust snippets are compiled: `src/lib.rs` includes README.md as a doctest
//! (`ReadmeSnippets`), which compiles every block fenced as Rust unless it says `ignore` (or is
//! text, shell, Python ...). This checks README has no Rust block the doctest would skip.

#[test]
fn every_rust_snippet_in_readme_is_compiled() {
    let readme = include_str!("../../README.md");
    let mut rust_blocks = 0;
    let mut skipped = Vec::new();
    let mut inside = false;
    for (n, line) in readme.lines().enumerate() {
        let Some(fence) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        if inside {
            inside = false;
            continue;
        }
        inside = true;
        let attrs: Vec<&str> = fence.split(',').map(str::trim).collect();
        if attrs.first() == Some(&"rust") {
            rust_blocks += 1;
            if attrs
                .iter()
                .any(|a| matches!(*a, "ignore" | "compile_fail"))
            {
                skipped.push(format!("line {}: ```{fence}", n + 1));
            }
        }
    }
    assert!(!inside, "README has an unclosed code block");
    assert!(
        rust_blocks >= 5,
        "README's Rust snippets: found only {rust_blocks}"
    );
    assert!(
        skipped.is_empty(),
        "README snippets the doctest does not compile: {skipped:?}"
    );
}
