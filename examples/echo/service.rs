//! The echo service: every byte received is sent back, in order.
//! Shared by the `echo` example and the integration tests.

use baton::{ByteStream, ConnId, ConnInfo, Ctx, Service};

/// The echo codec: the runtime's [`ByteStream`] (frames are whatever bytes
/// arrived; a frame's buffer becomes the write buffer, not a copy).
pub type EchoCodec = ByteStream;

/// Sends every frame back to the connection it came from.
#[derive(Debug, Default)]
pub struct Echo;

impl Service for Echo {
    type Codec = EchoCodec;
    type ConnState = ();
    type Command = ();

    fn codec(&mut self, _: &ConnInfo) -> EchoCodec {
        EchoCodec::default()
    }

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), frame: Vec<u8>) {
        // A refused send means the connection is closing or gone; the runtime
        // has already logged and counted the reason.
        let _ = ctx.send(conn, frame);
    }
}
