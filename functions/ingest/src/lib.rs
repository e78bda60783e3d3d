//! pushgate's HTTP front door.
