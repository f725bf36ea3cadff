//! The echo service: every byte received is sent back, in order.
//! Shared by the `echo` example and the integration tests.

use baton::{Codec, ConnId, ConnInfo, Ctx, ProtocolError, RecvBuf, Service};

/// Frames are whatever bytes have arrived; there is no message boundary.
#[derive(Debug, Default)]
pub struct EchoCodec;

impl Codec for EchoCodec {
    type In = Vec<u8>;
    type Out = Vec<u8>;

    fn decode(&mut self, src: &mut RecvBuf) -> Result<Option<Vec<u8>>, ProtocolError> {
        Ok((!src.is_empty()).then(|| src.take_all()))
    }

    fn encode(&mut self, frame: Vec<u8>, dst: &mut Vec<u8>) {
        if dst.is_empty() {
            // Reuse the frame's allocation instead of copying it.
            *dst = frame;
        } else {
            dst.extend_from_slice(&frame);
        }
    }

    fn encoded_len(frame: &Vec<u8>) -> usize {
        frame.len()
    }
}

/// Sends every frame back to the connection it came from.
#[derive(Debug, Default)]
pub struct Echo;

impl Service for Echo {
    type Codec = EchoCodec;
    type ConnState = ();
    type Command = ();

    fn codec(&mut self, _: &ConnInfo) -> EchoCodec {
        EchoCodec
    }

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), frame: Vec<u8>) {
        // A refused send means the connection is closing or gone; the runtime
        // has already logged and counted the reason.
        let _ = ctx.send(conn, frame);
    }
}
