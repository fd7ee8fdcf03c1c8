// `sqlx::migrate!` embeds migrations/<backend>/*.sql at build time; a new
// migration file must rebuild the crate, which cargo only knows from this.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
