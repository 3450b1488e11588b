//! `probe`: connect once and hang up, to tell a user before a start
//! whether the database takes these settings (`shardd --check`).

use tokio_postgres::NoTls;

use super::error::describe;
use super::DatabaseSettings;

/// Connect to the database `settings` name, within `connect_timeout_ms`,
/// and close at once. `Err` says why not (unreachable, refused
/// credentials, no such database), never with the password.
pub async fn probe(settings: &DatabaseSettings) -> Result<(), String> {
    let config = settings.connection_config()?;
    let timeout = settings.connect_timeout();
    let (client, connection) = tokio::time::timeout(timeout, config.connect(NoTls))
        .await
        .map_err(|_| format!("no connection within {timeout:?}"))?
        .map_err(|error| describe(&error))?;
    drop(client);
    // With the client gone the connection says goodbye (Terminate) and ends.
    let _ = tokio::time::timeout(timeout, connection).await;
    Ok(())
}
