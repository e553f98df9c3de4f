package dev.pet.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * How {@code quantization.lm_head} finds the output head's weight, and unties it from a shared embedding, and how
 * {@code quantization.embeddings} finds the token lookup's table.
 */
class QuantizationHeadTest {
    private static final Tensor TABLE = Tensor.ofFloats(new float[12], 4, 3);

    /** ids → Gather(table) → Gemm(h, table, transB) → Reshape → logits: a head tied to its embedding. */
    private static Graph tied() {
        Graph g = new Graph("tied");
        GraphBuilder b = new GraphBuilder(g);
        Value ids = b.input("input_ids", TensorType.of(DataType.INT64, 2));
        Value table = b.initializer("embed.weight", TABLE);
        Value h = b.gather(table, ids, 0);
        Value rows = b.gemm(h, table, null, 1f, 1f, false, true);
        b.output(b.reshape(rows, 2, 4), "logits");
        return g;
    }

    @Test
    void aTiedHeadGetsItsOwnNameOverTheSameDataAndTheLookupKeepsTheTable() {
        Graph g = tied();
        String head = Quantization.untiedHead(g, "logits");
        assertEquals(Quantization.LM_HEAD_WEIGHT, head);
        assertSame(TABLE, g.initializer(head), "a second name over the same data, not a copy");
        Value table = g.requireValue("embed.weight");
        assertEquals(1, table.uses().size());
        assertEquals("Gather", table.uses().get(0).opType());
        assertEquals("Gemm", g.requireValue(head).uses().get(0).opType());
        assertEquals(head, Quantization.untiedHead(g, "logits"), "once untied, the head's weight is its own");
    }

    @Test
    void theTokenTableIsTheGatheredTableWithARowPerToken() {
        assertEquals("embed.weight", Quantization.embeddingTable(tied(), "input_ids", 4));
        // through a cast of the ids, beside a position table with another row count
        Graph g = new Graph("cast");
        GraphBuilder b = new GraphBuilder(g);
        Value ids = b.cast(b.input("input_ids", TensorType.of(DataType.INT32, 2)), DataType.INT64);
        Value positions = b.gather(b.initializer("wpe.weight", Tensor.ofFloats(new float[6], 2, 3)), ids, 0);
        b.output(b.add(positions, b.gather(b.initializer("wte.weight", TABLE), ids, 0)), "h");
        assertEquals("wte.weight", Quantization.embeddingTable(g, "input_ids", 4));
        PetConfigException e = assertThrows(PetConfigException.class,
                () -> Quantization.embeddingTable(g, "input_ids", 5));
        assertEquals("embeddings", e.key());
        assertTrue(e.getMessage().contains("no Gather of a table with a row for each of the 5 tokens reads the input"
                + " ids 'input_ids'"), e.getMessage());
    }

    @Test
    void logitsNotMadeByALinearOverAWeightAreRefusedNamingTheOption() {
        Graph g = new Graph("no-head");
        GraphBuilder b = new GraphBuilder(g);
        b.output(b.relu(b.input("x", TensorType.of(DataType.FLOAT, 2, 4))), "logits");
        PetConfigException e = assertThrows(PetConfigException.class, () -> Quantization.untiedHead(g, "logits"));
        assertEquals("lm_head", e.key());
        assertTrue(e.getMessage().contains("the logits 'logits' are not made by a MatMul or Gemm over a weight"
                + " initializer (found "), e.getMessage());
    }
}
