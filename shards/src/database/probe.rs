//! `probe`: connect once, prepare the statements, and hang up, to tell a
//! user before a start whether the database takes these settings and
//! holds what the app queries (`shardd --check`).

use tokio_postgres::NoTls;

use super::error::describe;
use super::pool::prepare_all;
use super::DatabaseSettings;

/// Connect to the database `settings` name and prepare `statements` on
/// it, as each shard's pool will, within `connect_timeout_ms`; then
/// close. `Err` says why not (unreachable, refused credentials, no such
/// database, a table missing), never with the password.
pub async fn probe(settings: &DatabaseSettings, statements: &[&str]) -> Result<(), String> {
    let config = settings.connection_config()?;
    let timeout = settings.connect_timeout();
    let (client, mut connection) = tokio::time::timeout(timeout, config.connect(NoTls))
        .await
        .map_err(|_| format!("no connection within {timeout:?}"))?
        .map_err(|error| describe(&error))?;
    let prepare = prepare_all(&client, statements);
    tokio::select! {
        prepared = tokio::time::timeout(timeout, prepare) => {
            prepared.map_err(|_| format!("statements not prepared within {timeout:?}"))??;
        }
        ended = &mut connection => {
            return Err(match ended {
                Ok(()) => "the connection closed".into(),
                Err(error) => describe(&error),
            });
        }
    }
    drop(client);
    // With the client gone the connection says goodbye (Terminate) and ends.
    let _ = tokio::time::timeout(timeout, connection).await;
    Ok(())
}
