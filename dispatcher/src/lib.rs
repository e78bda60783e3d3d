//! pushgate's delivery workers (skeleton until the dispatcher issue).
