//! The settings of an open store, as its builder left them.

use crate::settings::{Durability, Settings};

/// Settings shared by all handles of one store.
#[derive(Clone)]
pub(crate) struct Config {
    /// What both backends' builders offer: lock timeout, poll delay, default expiry, maximum
    /// size, observer.
    pub settings: Settings,
    pub durability: Durability,
    pub fan_out: Option<u32>,
    pub file_mode: u32,
    pub allow_shared_dir: bool,
    pub allow_network_fs: bool,
    pub fencing: Option<bool>,
    pub create_if_missing: bool,
    pub reuse_inodes: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            settings: Settings::default(),
            durability: Durability::None,
            fan_out: None,
            file_mode: 0o600,
            allow_shared_dir: false,
            allow_network_fs: false,
            fencing: None,
            create_if_missing: true,
            reuse_inodes: true,
        }
    }
}

impl Config {
    /// Directory mode derived from the file mode: each class that may read files may also
    /// enter directories (0600 → 0700, 0640 → 0750).
    pub fn dir_mode(&self) -> u32 {
        let m = self.file_mode & 0o777;
        m | 0o700 | ((m & 0o044) >> 2)
    }
}
