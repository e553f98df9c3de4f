package dev.pet.spark;

import java.util.Arrays;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/** The row plumbing of batch inference: the input column and the output columns appended to each row. */
final class Rows {
    private Rows() {
    }

    /** The index of string column {@code name}; a clear error when it is missing or not a string. */
    static int stringColumn(StructType schema, String name, String what) {
        if (!Arrays.asList(schema.fieldNames()).contains(name)) {
            throw new IllegalArgumentException("the Dataset has no column '" + name + "' (" + what + "); its columns: "
                    + String.join(", ", schema.fieldNames()));
        }
        int column = schema.fieldIndex(name);
        if (!schema.fields()[column].dataType().equals(DataTypes.StringType)) {
            throw new IllegalArgumentException("column '" + name + "' is " + schema.fields()[column].dataType()
                    .simpleString() + ", expected strings (" + what + ")");
        }
        return column;
    }

    /** {@code row} with {@code values} after its own. */
    static Row append(Row row, Object... values) {
        Object[] out = new Object[row.length() + values.length];
        for (int c = 0; c < row.length(); c++) {
            out[c] = row.get(c);
        }
        System.arraycopy(values, 0, out, row.length(), values.length);
        return RowFactory.create(out);
    }
}
