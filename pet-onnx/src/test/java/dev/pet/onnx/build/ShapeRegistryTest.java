package dev.pet.onnx.build;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.autodiff.GradientRegistry;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.tensor.DataType;
import java.util.List;
import org.junit.jupiter.api.Test;

class ShapeRegistryTest {
    @Test
    void aRuleServesFromItsOpsetUntilTheNextForm() {
        ShapeRegistry r = ShapeRegistry.standard();
        ShapeRule v1 = r.rule("Unsqueeze", 1);
        ShapeRule v13 = r.rule("Unsqueeze", 13);
        assertSame(v1, r.rule("Unsqueeze", 12));
        assertSame(v13, r.rule("Unsqueeze", 21));
        assertTrue(v1 != v13);
        assertNull(r.rule("Pad", 1), "Pad's first supported form is opset 2's");
        assertNull(r.rule("NoSuchOp", 17));
    }

    @Test
    void refusesDuplicateRules() {
        ShapeRegistry r = ShapeRegistry.standard();
        assertThrows(OnnxException.class, () -> r.register("MatMul", (n, o) -> List.of()));
        r.register("MatMul", 99, (n, o) -> List.of(TensorType.unknown()));
        assertEquals(List.of(TensorType.unknown()), r.rule("MatMul", 100).infer(null, 100));
    }

    @Test
    void everyDifferentiableOpHasAShapeRule() {
        ShapeRegistry r = ShapeRegistry.standard();
        for (String op : GradientRegistry.standard().opTypes()) {
            if (op.contains(":")) {
                continue; // ops of other domains (com.microsoft:MatMulNBits) keep the types their builder declares
            }
            assertTrue(r.rule(op, 17) != null, op + " has a gradient rule but no shape rule");
        }
    }

    @Test
    void opsOfOtherDomainsAndUnknownOpsKeepTheirDeclaredTypes() {
        ShapeFixture s = new ShapeFixture();
        var n = s.node("FusedMatMul", List.of(s.floats(2L, 3L)), 1);
        assertEquals(List.of(), ShapeInference.inferTypes(n, 17));
        n.output(0).setType(TensorType.of(DataType.FLOAT, 7));
        ShapeInference.infer(n, 17);
        assertEquals(TensorType.of(DataType.FLOAT, 7), n.output(0).type());
    }
}
